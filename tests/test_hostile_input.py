"""No input reaches a 500: hostile query strings, JSON bodies and form fields on every endpoint.

Property-based: Hypothesis draws JSON documents (deep nesting, NUL, lone surrogates,
huge numbers, odd types) and query values, and every endpoint must answer below 500.
Rate limits are off here; the limits have tests of their own.
"""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.helpers import make_pair, serve

pytestmark = pytest.mark.django_db

HOSTILE_TEXT = ["\x00", "a\x00b", "\ud800", "x\udfff", "{b}", "%00", "' OR 1=1 --", "é" * 300]

# Every value a query parameter may take here, and every endpoint that reads one.
GET_URLS = [
    "/",
    "/browse",
    "/validate",
    "/validate/grid",
    "/label",
    "/labels",
    "/statistics",
    "/export",
    "/donate",
    "/donate/mine",
    "/me",
    "/about",
    "/api",
    "/v1/label",
    "/v1/validate",
    "/v1/me",
    "/v1/export",
    "/v1/export/count",
    "/v1/statistics/validations/count",
    "/releases",
    "/v1/releases",
    "/v1/releases/2027-01/changes",
    "/v1/revocations.jsonl",
    "/verify",
    "/v1/validation",
    "/v1/validations",
    "/v1/labelme",
    "/v1/label/accessors",
    "/v1/label/plurals",
    "/v1/label/suggestions",
    "/v1/statistics",
    "/v1/activity",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/people/nobody",
    "/v1/user/nobody/profile",
    "/v1/annotate",
    "/v1/annotation",
    "/v1/annotations",
]
PARAMETERS = [
    "label",
    "q",
    "query",
    "page",
    "limit",
    "grouped",
    "cursor",
    "min_probability",
    "release",
    "since",
    "tags",
    "validation_id",
    "image_id",
    "shuffle",
    "after",
    "detailed",
    "label_type",
    "include_unlocked",
    "show_header",
    "only_once",
    "annotation_id",
    "rev",
    "label_id",
    "validation_id",
    "answered",
    "again",
]

# JSON endpoints: (method, url); {uuid} is a public picture's.
JSON_ENDPOINTS = [
    ("post", "/v1/donation/{uuid}/validate/yes"),
    ("post", "/v1/donation/{uuid}/validate/no"),
    ("patch", "/v1/donation/validate"),
    ("post", "/v1/report/{uuid}"),
    ("post", "/v1/validation/{uuid}/validate/yes"),
    ("patch", "/v1/validation/validate"),
    ("post", "/v1/donation/{uuid}/labelme"),
    ("post", "/v1/label/suggest"),
    ("post", "/v1/signup"),
    ("post", "/v1/donation/{uuid}/annotate"),
    ("put", "/v1/annotation/{annotation}"),
    ("post", "/v1/annotation/{annotation}/validate/yes"),
    ("post", "/v1/validation/{pair_uuid}/not-annotatable"),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(HOSTILE_TEXT),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(HOSTILE_TEXT), children, max_size=4)
    ),
    max_leaves=12,
)
# The keys the endpoints read, so that generated bodies reach past the first check.
json_bodies = st.fixed_dictionaries(
    {},
    optional={
        "label": json_values | st.sampled_from(["dog", "dog\x00", "\ud800"]),
        "sublabel": json_values,
        "reason": json_values | st.sampled_from(HOSTILE_TEXT),
        "ticket": json_values,
        "annotations": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["rect", "ellipse", "polygon"]) | json_values},
                optional=dict.fromkeys(
                    ("left", "top", "width", "height", "rx", "ry", "angle", "points"), json_values
                ),
            ),
            max_size=3,
        )
        | json_values,
        "validations": st.lists(
            st.fixed_dictionaries(
                {"uuid": json_values, "valid": st.sampled_from(["yes", "no", "x"])},
                optional={"ticket": json_values},
            ),
            max_size=3,
        )
        | json_values,
    },
)


def nested(depth: int) -> str:
    return '{"label": ' + "[" * depth + "]" * depth + "}"


@pytest.fixture
def pair(settings):
    settings.RATELIMIT_ENABLE = False
    pair = make_pair("dog")
    serve(pair)
    # A validated cat on the same picture, outlined (by nobody, so that no voter exists):
    # the outline endpoints get past their first checks.
    from annotations.models import Annotation, AnnotationRevision
    from donations.models import ImageLabel

    cat = make_pair("cat", pair.image, status=ImageLabel.Status.VALIDATED)
    pair.outline = Annotation.objects.create(pair=cat)
    rect = {"type": "rect", "left": 1, "top": 1, "width": 10, "height": 10, "angle": 0}
    AnnotationRevision.objects.create(annotation=pair.outline, number=1, shapes=[rect])
    return pair


def endpoint_url(url: str, pair) -> str:
    return url.format(
        uuid=pair.image.uuid, annotation=pair.outline.uuid, pair_uuid=pair.outline.pair.uuid
    )


def below_500(response) -> int:
    assert response.status_code < 500, response.content[:300]
    return response.status_code


@pytest.mark.parametrize("url", GET_URLS)
@pytest.mark.parametrize("value", ["%00", "a%00b", "%ED%A0%80", "%FF", "9" * 40, "-1", "dog%00"])
def test_hostile_query_values_get_a_4xx_or_a_page(client, pair, url, value):
    for name in PARAMETERS:
        below_500(client.get(f"{url}?{name}={value}"))


@pytest.mark.parametrize("method, url", JSON_ENDPOINTS)
@pytest.mark.parametrize("depth", [50, 1000, 100_000])
def test_deeply_nested_json_is_refused_with_a_reason(client, pair, method, url, depth):
    response = getattr(client, method)(
        endpoint_url(url, pair), nested(depth), content_type="application/json"
    )
    assert below_500(response) == 400
    assert "nested too deeply" in response.json()["error"]


@pytest.mark.parametrize("text", ["shows \x00 nul", "lone \ud800 surrogate"])
def test_a_report_reason_no_database_can_store_is_refused_and_creates_no_one(client, pair, text):
    from people.models import Voter

    body = json.dumps({"reason": text})  # ensure_ascii: the surrogate travels as \ud800
    response = client.post(f"/v1/report/{pair.image.uuid}", body, content_type="application/json")
    assert below_500(response) == 400
    assert not Voter.objects.exists()


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=json_bodies, endpoint=st.sampled_from(JSON_ENDPOINTS))
def test_any_json_body_on_any_json_endpoint_answers_below_500(pair, body, endpoint):
    method, url = endpoint
    response = getattr(Client(), method)(
        endpoint_url(url, pair), json.dumps(body), content_type="application/json"
    )
    below_500(response)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            ["answer", "ticket", "prefer", "prefer_ticket", "shown", "yes", "label", "pair"]
        ),
        # A form's bytes cannot carry a lone surrogate (the test client cannot send one).
        st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
        | st.sampled_from([t for t in HOSTILE_TEXT if t.isascii() or t.startswith("é")]),
        max_size=5,
    )
)
def test_any_form_on_the_voting_pages_answers_below_500(pair, fields):
    client = Client()
    below_500(client.post(f"/validate/{pair.pk}/vote", fields))
    below_500(client.post("/validate/grid?label=dog", fields))
    below_500(client.post(f"/image/{pair.image.uuid}/labels", fields))
    below_500(client.post("/validate/undo", fields))
    below_500(client.post("/validate/tutorial", fields))
    below_500(client.post(f"/donate/{pair.image.uuid}/labels", fields))
    below_500(client.post(f"/image/{pair.image.uuid}/report", {"reason": "other", **fields}))


@pytest.mark.parametrize("method, url", JSON_ENDPOINTS)
def test_a_number_of_thousands_of_digits_is_refused_in_plain_words(client, pair, method, url):
    response = getattr(client, method)(
        endpoint_url(url, pair), '{"a": ' + "9" * 5000 + "}", content_type="application/json"
    )
    assert below_500(response) == 400
    assert response.json()["error"] == "a number in the body has too many digits"
