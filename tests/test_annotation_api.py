"""Drawing and editing outlines through /v1/: the original 2021 shapes, and every refusal."""

import json

import pytest

from annotations.models import Annotation, AnnotationRevision
from donations.models import Image, ImageLabel
from tests.helpers import make_image, make_label, make_pair

pytestmark = pytest.mark.django_db

RECT = {"type": "rect", "left": 10, "top": 20, "width": 100, "height": 50, "angle": 0}
ELLIPSE = {"type": "ellipse", "left": 200, "top": 100, "rx": 40, "ry": 30, "angle": 0}
POLYGON = {"type": "polygon", "points": [{"x": 300, "y": 300}, {"x": 400, "y": 300},
                                         {"x": 350, "y": 400}], "angle": 0}  # fmt: skip


def validated_pair(label="dog", **image_fields):
    return make_pair(label, make_image(**image_fields), status=ImageLabel.Status.VALIDATED)


def send(client, url, body, method="post", **headers):
    text = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(url, text, content_type="application/json", **headers)


@pytest.fixture
def token(client):
    return client.post("/v1/voter").json()["token"]


def outline(client, pair, shapes, token, label=None, sublabel=""):
    name = label or (pair.label.parent.name if pair.label.parent_id else pair.label.name)
    sub = sublabel or (pair.label.name if pair.label.parent_id else "")
    return send(
        client,
        f"/v1/donation/{pair.image.uuid}/annotate",
        [{"annotations": shapes, "label": name, "sublabel": sub}],
        HTTP_X_VOTER_TOKEN=token,
    )


def test_an_outline_is_stored_and_answered_with_201_and_its_location(client, token):
    pair = validated_pair()
    response = outline(client, pair, [RECT, ELLIPSE, POLYGON], token)
    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get()
    assert response["Location"] == f"/v1/annotation?annotation_id={annotation.uuid}"
    assert annotation.pair == pair and annotation.revision == 1
    assert annotation.status == Annotation.Status.OPEN
    assert [s["type"] for s in annotation.latest().shapes] == ["rect", "ellipse", "polygon"]
    assert response.json()["annotations"][0]["annotation_id"] == str(annotation.uuid)


def test_it_reads_an_outline_in_the_original_shape(client, token):
    pair = validated_pair()
    location = outline(client, pair, [RECT], token)["Location"]
    body = client.get(location).json()
    assert body["uuid"] == str(pair.image.uuid)
    assert (body["label"], body["sublabel"]) == ("dog", "")
    assert body["annotations"] == [{**RECT, "left": 10.0, "top": 20.0, "width": 100.0,
                                    "height": 50.0, "angle": 0.0}]  # fmt: skip
    assert (body["num_yes"], body["num_no"], body["revision"]) == (0, 0, 1)
    assert "is_gold" not in body and "status" not in body


def test_a_part_is_outlined_with_its_sublabel(client, token):
    dog = make_label("dog")
    eye = make_label("eye", parent=dog)
    pair = make_pair(eye, status=ImageLabel.Status.VALIDATED)
    response = outline(client, pair, [RECT], token, label="dog", sublabel="eye")
    assert response.status_code == 201, response.content
    assert response.json()["annotations"][0]["sublabel"] == "eye"


def test_editing_makes_a_revision_and_the_first_stays_readable(client, token):
    pair = validated_pair()
    location = outline(client, pair, [RECT], token)["Location"]
    annotation = Annotation.objects.get()
    moved = {**RECT, "left": 50}
    response = send(
        client,
        f"/v1/annotation/{annotation.uuid}",
        {"annotations": [moved, ELLIPSE]},
        method="put",
        HTTP_X_VOTER_TOKEN=token,
    )
    assert response.status_code == 200, response.content
    assert response.json()["revision"] == 2
    annotation.refresh_from_db()
    assert annotation.revision == 2
    assert client.get(location).json()["annotations"][0]["left"] == 50.0
    first = client.get(location + "&rev=1").json()
    assert first["annotations"][0]["left"] == 10.0 and first["revision"] == 1
    assert client.get(location + "&rev=3").status_code == 404
    assert client.get(location + "&rev=x").status_code == 400


def test_only_its_author_edits_an_outline(client, token):
    outline(client, validated_pair(), [RECT], token)
    annotation = Annotation.objects.get()
    other = client.post("/v1/voter").json()["token"]
    response = send(
        client,
        f"/v1/annotation/{annotation.uuid}",
        {"annotations": [ELLIPSE]},
        method="put",
        HTTP_X_VOTER_TOKEN=other,
    )
    assert response.status_code == 403
    assert "author" in response.json()["error"]
    assert AnnotationRevision.objects.count() == 1


def test_a_second_outline_of_the_same_pair_by_the_same_person_is_refused(client, token):
    pair = validated_pair()
    assert outline(client, pair, [RECT], token).status_code == 201
    response = outline(client, pair, [ELLIPSE], token)
    assert response.status_code == 409
    assert "edit your outline" in response.json()["error"]
    assert Annotation.objects.count() == 1


def test_two_people_outline_the_same_pair_independently(client, token):
    pair = validated_pair()
    other = client.post("/v1/voter").json()["token"]
    assert outline(client, pair, [RECT], token).status_code == 201
    assert outline(client, pair, [RECT], other).status_code == 201
    assert Annotation.objects.filter(pair=pair).count() == 2


HOSTILE = [
    ("nan", '[{"type": "rect", "left": NaN, "top": 1, "width": 5, "height": 5}]', "finite"),
    ("inf", '[{"type": "rect", "left": 1, "top": Infinity, "width": 5, "height": 5}]', "finite"),
    ("huge", '[{"type": "rect", "left": 1, "top": 1, "width": 1e400, "height": 5}]', "finite"),
    ("string", '[{"type": "rect", "left": "1", "top": 1, "width": 5, "height": 5}]', "number"),
    (
        "bow-tie",
        json.dumps(
            [
                {
                    "type": "polygon",
                    "points": [
                        {"x": 10, "y": 10},
                        {"x": 110, "y": 110},
                        {"x": 110, "y": 10},
                        {"x": 10, "y": 110},
                    ],
                }
            ]
        ),
        "crosses itself",
    ),  # fmt: skip
    (
        "501 points",
        json.dumps(
            [{"type": "polygon", "points": [{"x": i % 600, "y": i // 600} for i in range(501)]}]
        ),
        "at most 500 points",
    ),  # fmt: skip
    ("101 shapes", json.dumps([RECT] * 101), "at most 100 shapes"),
    ("outside", json.dumps([{**RECT, "left": 5000}]), "outside"),
]


@pytest.mark.parametrize(("case", "shapes", "reason"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_geometry_is_refused_naming_the_shape_and_nothing_is_stored(
    client, token, case, shapes, reason
):
    pair = validated_pair()
    body = '[{"label": "dog", "annotations": ' + shapes + "}]"
    response = send(
        client, f"/v1/donation/{pair.image.uuid}/annotate", body, HTTP_X_VOTER_TOKEN=token
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert reason in error
    if case != "101 shapes":
        assert error.startswith("shape 0: ")
    assert not Annotation.objects.exists() and not AnnotationRevision.objects.exists()


def test_a_bad_second_item_stores_nothing_of_the_first(client, token):
    image = make_image()
    make_pair("dog", image, status=ImageLabel.Status.VALIDATED)
    make_pair("cat", image, status=ImageLabel.Status.VALIDATED)
    body = [
        {"label": "dog", "annotations": [RECT]},
        {"label": "cat", "annotations": [{**RECT, "width": -1}]},
    ]
    response = send(client, f"/v1/donation/{image.uuid}/annotate", body, HTTP_X_VOTER_TOKEN=token)
    assert response.status_code == 400
    assert response.json()["error"].startswith("item 1: shape 0: width")
    assert not Annotation.objects.exists()


def test_a_bad_revision_keeps_the_outline_as_it_was(client, token):
    outline(client, validated_pair(), [RECT], token)
    annotation = Annotation.objects.get()
    response = send(
        client,
        f"/v1/annotation/{annotation.uuid}",
        {"annotations": [{**RECT, "height": float("nan")}]},
        method="put",
        HTTP_X_VOTER_TOKEN=token,
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("shape 0: height")
    annotation.refresh_from_db()
    assert annotation.revision == 1 and AnnotationRevision.objects.count() == 1


@pytest.mark.parametrize(
    "status", [Image.Status.PENDING, Image.Status.HIDDEN, Image.Status.QUARANTINED]
)
def test_pictures_that_are_not_public_cannot_be_outlined(client, token, status):
    pair = validated_pair(status=status)
    response = outline(client, pair, [RECT], token)
    assert response.status_code == 404
    assert not Annotation.objects.exists()


def test_a_pair_the_crowd_has_not_confirmed_cannot_be_outlined(client, token):
    pair = make_pair("dog")
    response = outline(client, pair, [RECT], token)
    assert response.status_code == 409
    assert "not confirmed" in response.json()["error"]
    assert not Annotation.objects.exists()


def test_a_label_that_is_not_outlined_is_refused(client, token):
    pair = validated_pair(label=make_label("beach", annotatable=False))
    response = outline(client, pair, [RECT], token)
    assert response.status_code == 400
    assert "not outlined" in response.json()["error"]


def test_a_label_the_picture_lacks_is_404(client, token):
    pair = validated_pair()
    make_label("cat")
    response = outline(client, pair, [RECT], token, label="cat")
    assert response.status_code == 404
    assert "no label" in response.json()["error"]


def test_an_outline_of_a_picture_hidden_later_is_no_longer_readable(client, token):
    pair = validated_pair()
    location = outline(client, pair, [RECT], token)["Location"]
    Image.objects.filter(pk=pair.image_id).update(status=Image.Status.HIDDEN)
    assert client.get(location).status_code == 404
    annotation = Annotation.objects.get()
    response = send(
        client,
        f"/v1/annotation/{annotation.uuid}",
        {"annotations": [RECT]},
        method="put",
        HTTP_X_VOTER_TOKEN=token,
    )
    assert response.status_code == 404


def test_the_body_must_be_json(client, token):
    pair = validated_pair()
    response = client.post(
        f"/v1/donation/{pair.image.uuid}/annotate",
        "label=dog",
        content_type="text/plain",
        HTTP_X_VOTER_TOKEN=token,
    )
    assert response.status_code == 415
    assert send(client, f"/v1/donation/{pair.image.uuid}/annotate", "[1]").status_code == 400
    assert client.get("/v1/annotation").json()["error"] == "nothing left to check for you right now"
    assert client.get("/v1/annotation?annotation_id=nope").status_code == 404


def test_another_site_cannot_make_a_browser_draw(client, token):
    pair = validated_pair()
    response = send(
        client,
        f"/v1/donation/{pair.image.uuid}/annotate",
        [{"label": "dog", "annotations": [RECT]}],
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403
    assert not Annotation.objects.exists()


def test_outlines_over_the_rate_limit_get_429(client, token, settings):
    settings.ANNOTATION_RATE = "2/m"
    image = make_image()
    for name in ("dog", "cat", "bird"):
        make_pair(name, image, status=ImageLabel.Status.VALIDATED)
    body = [{"label": name, "annotations": [RECT]} for name in ("dog", "cat", "bird")]
    response = send(client, f"/v1/donation/{image.uuid}/annotate", body, HTTP_X_VOTER_TOKEN=token)
    assert response.status_code == 429
    assert not Annotation.objects.exists()


OUTLINE_PATHS = [
    "/v1/annotate",
    "/v1/donation/{uuid}/annotate",
    "/v1/annotation",
    "/v1/annotation/{uuid}",
    "/v1/annotation/{uuid}/validate/yes",
    "/v1/annotation/{uuid}/validate/no",
    "/v1/validation/{pair_uuid}/not-annotatable",
    "/v1/annotations",
]


def test_every_outline_endpoint_is_described_and_listed_on_the_api_page(client):
    from imagemonkey import api_urls

    routed = {
        "/v1/"
        + str(pattern.pattern)
        .replace("<uuid:uuid>", "{uuid}")
        .replace("<uuid:pair_uuid>", "{pair_uuid}")
        for pattern in api_urls.urlpatterns
        if getattr(getattr(pattern, "callback", None), "__module__", "") == "annotations.api"
    }
    assert routed == set(OUTLINE_PATHS)
    spec = client.get("/v1/openapi.json").json()
    page = client.get("/api").content.decode()
    for path in OUTLINE_PATHS:
        assert path in spec["paths"], path
        shown = path.replace("{uuid}", "&lt;uuid&gt;").replace("{pair_uuid}", "&lt;uuid&gt;")
        shown = shown.replace("validate/yes", "validate/yes|no").replace(
            "validate/no", "validate/yes|no"
        )
        assert shown in page, path


def test_a_frozen_pair_cannot_be_outlined(client, token):
    pair = validated_pair()
    ImageLabel.objects.filter(pk=pair.pk).update(frozen=True)
    response = outline(client, pair, [RECT], token)
    assert response.status_code == 409
    assert "closed" in response.json()["error"]


def test_editing_an_outline_of_a_frozen_pair_is_the_409_the_api_describes(client, token):
    pair = validated_pair()
    outline(client, pair, [RECT], token)
    ImageLabel.objects.filter(pk=pair.pk).update(frozen=True)
    annotation = Annotation.objects.get()
    response = send(
        client, f"/v1/annotation/{annotation.uuid}", {"annotations": [ELLIPSE]}, "put",
        HTTP_X_VOTER_TOKEN=token,
    )  # fmt: skip
    assert response.status_code == 409 and "closed" in response.json()["error"]
    assert AnnotationRevision.objects.count() == 1
    described = client.get("/v1/openapi.json").json()["paths"]["/v1/annotation/{uuid}"]["put"]
    assert "409" in described["responses"]


def test_an_earlier_revision_reads_with_the_votes_it_had(client, token):
    from annotations import voting
    from tests.helpers import make_voter

    outline(client, validated_pair(), [RECT], token)
    annotation = Annotation.objects.get()
    checker = make_voter(trusted=True, gold_correct=20)
    ticket = voting.check_ticket(checker, annotation)
    voting.record_vote(annotation.uuid, checker, 1, "10.3.3.0/24", ticket=ticket)
    send(
        client,
        f"/v1/annotation/{annotation.uuid}",
        {"annotations": [ELLIPSE]},
        method="put",
        HTTP_X_VOTER_TOKEN=token,
    )
    url = f"/v1/annotation?annotation_id={annotation.uuid}"
    assert client.get(url + "&rev=1").json()["num_yes"] == 1
    assert client.get(url).json()["num_yes"] == 0


def test_an_outline_of_a_pair_the_crowd_has_since_rejected_is_neither_edited_nor_checked(
    client, token
):
    from annotations import selection
    from tests.helpers import make_voter

    pair = validated_pair()
    outline(client, pair, [RECT], token)
    ImageLabel.objects.filter(pk=pair.pk).update(status=ImageLabel.Status.REJECTED)
    annotation = Annotation.objects.get()
    response = send(
        client, f"/v1/annotation/{annotation.uuid}", {"annotations": [ELLIPSE]}, "put",
        HTTP_X_VOTER_TOKEN=token,
    )  # fmt: skip
    assert response.status_code == 409
    assert "nothing to outline" in response.json()["error"]
    assert AnnotationRevision.objects.count() == 1
    checker = make_voter(trusted=True, gold_correct=20)
    assert selection.outline_to_check(checker) is None
    ImageLabel.objects.filter(pk=pair.pk).update(status=ImageLabel.Status.VALIDATED)
    assert selection.outline_to_check(checker) == annotation
