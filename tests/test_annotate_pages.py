"""The outline pages through HTTP: /annotate and its save endpoints, /validate/annotations
and its grid."""

import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from annotations import drawing, shapes
from annotations.models import Annotation, AnnotationRevision, AnnotationVote, NotAnnotatable
from donations.models import ImageLabel
from people.identity import SESSION_KEY
from people.models import Voter
from tests.helpers import make_image, make_label, make_pair, make_voter, vote
from tests.test_hostile_input import json_values
from validation.models import Vote

pytestmark = pytest.mark.django_db

RECT = {"type": "rect", "left": 100, "top": 50, "width": 200, "height": 100, "angle": 0}


def validated_pair(label="dog", **image) -> ImageLabel:
    pair = make_pair(label, image=make_image(width=1600, height=1200, **image))
    for n in range(3):
        checker = make_voter(trusted=True, gold_correct=20, first_ip_prefix=f"198.51.{n}.0/24")
        vote(pair, checker, Vote.Answer.YES)
    pair.refresh_from_db()
    assert pair.status == ImageLabel.Status.VALIDATED
    return pair


def as_voter(voter: Voter, address: str = "203.0.113.9") -> Client:
    client = Client(REMOTE_ADDR=address)
    session = client.session
    session[SESSION_KEY] = voter.pk
    session.save()
    return client


def save(client: Client, url: str, body, method: str = "post", **headers):
    return getattr(client, method)(
        url, json.dumps(body), content_type="application/json", **headers
    )


def served(client: Client, path: str = "/annotate") -> dict:
    """The editor's data of the page served at `path`."""
    page = client.get(path)
    assert page.status_code == 200
    found = re.search(
        r'<script id="annotate-data" type="application/json">(.*?)</script>', page.text, re.S
    )
    return json.loads(found.group(1))


def test_the_editor_page_serves_a_validated_pair_in_master_pixels_and_writes_nothing():
    pair = validated_pair()
    rows = (Voter.objects.count(), Annotation.objects.count())
    page = Client().get("/annotate")
    assert page.status_code == 200
    assert "Outline every dog" in page.text
    data = served(Client())
    assert (data["width"], data["height"]) == (1600, 1200), "the master's size, not the display's"
    assert data["save"] == {"url": reverse("annotations:draw", args=[pair.pk]), "method": "POST"}
    assert (Voter.objects.count(), Annotation.objects.count()) == rows


def test_without_javascript_the_page_says_what_the_editor_needs_and_offers_validation():
    validated_pair()
    page = Client().get("/annotate").text
    assert "The drawing editor needs JavaScript" in page
    assert 'href="/validate"' in page
    assert '<div id="editor" class="editor" hidden>' in page, "the editor waits for its script"


def test_a_label_that_is_a_scene_is_not_offered_for_outlining():
    make_label("beach", annotatable=False)
    page = Client().get("/annotate?label=beach")
    assert "is not outlined" in page.text


def test_saving_stores_the_shapes_for_the_visitors_own_voter():
    pair = validated_pair()
    author = make_voter()
    client = as_voter(author)
    data = served(client)
    response = save(client, data["save"]["url"], {"annotations": [RECT], "ticket": data["ticket"]})
    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get(pair=pair)
    assert annotation.author == author and annotation.independent
    assert annotation.revisions.get().shapes == [
        {**RECT, "left": 100.0, "top": 50.0, "width": 200.0, "height": 100.0, "angle": 0.0}
    ]
    assert response.json()["annotation"] == str(annotation.uuid)


def test_a_bad_shape_is_refused_naming_it_and_nothing_is_stored():
    pair = validated_pair()
    client = as_voter(make_voter())
    crossing = {
        "type": "polygon",
        "points": [{"x": 0, "y": 0}, {"x": 100, "y": 100}, {"x": 100, "y": 0}, {"x": 0, "y": 100}],
    }
    url = reverse("annotations:draw", args=[pair.pk])
    response = save(client, url, {"annotations": [RECT, crossing]})
    assert response.status_code == 400
    assert response.json()["error"].startswith("shape 1: the polygon crosses itself")
    assert not Annotation.objects.exists()


def test_a_body_that_is_not_json_gets_a_reason():
    pair = validated_pair()
    client = as_voter(make_voter())
    url = reverse("annotations:draw", args=[pair.pk])
    response = client.post(url, "annotations=1", content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    assert not Annotation.objects.exists()


def test_a_pair_the_crowd_has_not_confirmed_cannot_be_outlined():
    pair = make_pair("dog", image=make_image(width=1600, height=1200))
    client = as_voter(make_voter())
    response = save(client, reverse("annotations:draw", args=[pair.pk]), {"annotations": [RECT]})
    assert response.status_code == 409
    assert not Annotation.objects.exists()


def test_a_page_of_another_site_cannot_save_for_a_visitor():
    pair = validated_pair()
    client = as_voter(make_voter())
    client.enforce_csrf_checks = True  # what a browser gets: the CSRF token is required
    client.handler.enforce_csrf_checks = True
    response = save(client, reverse("annotations:draw", args=[pair.pk]), {"annotations": [RECT]})
    assert response.status_code == 403
    assert not Annotation.objects.exists()


def test_the_author_edits_an_outline_into_a_second_revision_and_others_cannot():
    pair = validated_pair()
    author = make_voter()
    drawn = drawing.draw(pair, author, [RECT])
    client = as_voter(author)
    data = served(client, f"/annotate?annotation={drawn.annotation.uuid}")
    assert data["save"]["method"] == "PUT" and data["shapes"][0]["left"] == 100
    moved = {**RECT, "left": 300}
    response = save(client, data["save"]["url"], {"annotations": [moved]}, method="put")
    assert response.status_code == 200, response.content
    annotation = Annotation.objects.get()
    assert annotation.revision == 2
    assert annotation.revisions.get(number=1).shapes[0]["left"] == 100
    assert annotation.revisions.get(number=2).shapes[0]["left"] == 300
    first = as_voter(author).get(f"/annotate?annotation={annotation.uuid}&rev=1")
    assert '"left": 100.0' in first.text, "an earlier revision opens in the editor too"

    stranger = as_voter(make_voter(), "203.0.113.10")
    assert stranger.get(f"/annotate?annotation={annotation.uuid}").status_code == 403
    refused = save(stranger, data["save"]["url"], {"annotations": [RECT]}, method="put")
    assert refused.status_code == 403
    assert Annotation.objects.get().revision == 2


def test_an_unknown_outline_is_a_404_page():
    assert Client().get("/annotate?annotation=not-a-uuid").status_code == 404
    assert (
        Client().get("/annotate?annotation=6d4b3f1e-3f0e-4a53-9b7c-0c6a4d1f2e3a").status_code == 404
    )


def outline(label: str = "dog", shapes=None) -> Annotation:
    pair = validated_pair(label)
    return drawing.draw(pair, make_voter(), shapes or [RECT]).annotation


def test_the_check_page_draws_the_outline_over_the_picture_and_writes_nothing():
    annotation = outline()
    rows = (AnnotationVote.objects.count(), Voter.objects.count())
    page = Client().get("/validate/annotations")
    assert page.status_code == 200
    assert "Is this outline exactly one dog, drawn tightly?" in page.text
    assert 'viewBox="0 0 1600 1200"' in page.text
    assert '<rect x="100" y="50" width="200" height="100"/>' in page.text
    assert reverse("annotations:check-vote", args=[annotation.uuid]) in page.text
    assert Client().get("/validate/annotations/grid?label=dog").status_code == 200
    assert (AnnotationVote.objects.count(), Voter.objects.count()) == rows


def test_a_check_posted_as_a_form_is_recorded_and_redirects():
    annotation = outline()
    client = as_voter(make_voter(trusted=True, gold_correct=20), "198.51.50.1")
    page = client.get("/validate/annotations").text
    ticket = re.search(r'name="ticket" value="([^"]+)"', page).group(1)
    response = client.post(
        reverse("annotations:check-vote", args=[annotation.uuid]),
        {"answer": "yes", "ticket": ticket, "revision": annotation.revision},
    )
    assert response.status_code == 302
    assert AnnotationVote.objects.get().answer == Vote.Answer.YES


def test_a_check_without_an_answer_records_nothing():
    annotation = outline()
    client = as_voter(make_voter())
    response = client.post(
        reverse("annotations:check-vote", args=[annotation.uuid]), {"answer": "maybe"}
    )
    assert response.status_code == 302
    assert not AnnotationVote.objects.exists()


def test_the_grid_crops_each_outline_and_records_the_batch_in_one_go():
    outlines = [outline("dog") for _ in range(3)]
    client = as_voter(make_voter(trusted=True, gold_correct=20), "198.51.60.1")
    page = client.get("/validate/annotations/grid?label=dog").text
    assert page.count('class="outline-crop"') == 3
    assert 'viewBox="70 20 260 160"' in page, "the outline's box with a margin, inside the picture"
    shown = re.findall(r'name="shown" value="([^"]+)"', page)
    tickets = dict(re.findall(r'name="ticket-([^"]+)" value="([^"]+)"', page))
    response = client.post(
        "/validate/annotations/grid?label=dog",
        {
            "label": "dog",
            "shown": shown,
            "yes": shown[:1],
            "unmarked": "no",
            **{f"ticket-{key}": value for key, value in tickets.items()},
        },
    )
    assert response.status_code == 302
    answers = {
        v.annotation.uuid: v.answer for v in AnnotationVote.objects.select_related("annotation")
    }
    assert len(answers) == 3
    assert sorted(answers.values()) == [Vote.Answer.NO, Vote.Answer.NO, Vote.Answer.YES]
    assert {str(a.uuid) for a in outlines} == set(shown)


def test_a_damaged_grid_records_nothing():
    annotation = outline("dog")
    client = as_voter(make_voter())
    response = client.post(
        "/validate/annotations/grid?label=dog",
        {"label": "dog", "shown": [str(annotation.uuid), "nonsense"], "unmarked": "no"},
    )
    assert response.status_code == 302
    assert not AnnotationVote.objects.exists()


def test_the_grid_asks_for_a_label_first():
    outline("dog")
    page = Client().get("/validate/annotations/grid")
    assert page.status_code == 200 and "Which label?" in page.text


def test_not_annotatable_from_the_editor_is_recorded_for_the_served_pair():
    pair = validated_pair()
    voter = make_voter()
    client = as_voter(voter)
    data = served(client)
    response = save(client, data["not_annotatable_url"], {"ticket": data["ticket"]})
    assert response.status_code == 200 and response.json()["next"] == "/annotate"
    assert NotAnnotatable.objects.get().pair == pair
    assert "nothing to outline" in client.get("/annotate").text.lower(), "not offered again"


def test_the_accepted_outlines_of_the_pictures_other_labels_come_with_the_task():
    cat = validated_pair("cat")
    accepted = drawing.draw(cat, make_voter(), [RECT]).annotation
    Annotation.objects.filter(pk=accepted.pk).update(status=Annotation.Status.ACCEPTED)
    dog = make_pair("dog", image=cat.image)
    for n in range(3):
        checker = make_voter(trusted=True, gold_correct=20, first_ip_prefix=f"198.51.{9 + n}.0/24")
        vote(dog, checker, Vote.Answer.YES)
    data = served(Client(), "/annotate?label=dog")
    assert data["save"]["url"] == reverse("annotations:draw", args=[dog.pk])
    assert data["others"] == [{"label": "cat", "shapes": accepted.revisions.get().shapes}]


@pytest.mark.parametrize(
    "url", ["/annotate", "/validate/annotations", "/validate/annotations/grid"]
)
@pytest.mark.parametrize("value", ["%00", "a%00b", "%ED%A0%80", "%FF", "9" * 40, "-1", "dog%00"])
def test_hostile_query_values_on_the_outline_pages_get_a_4xx_or_a_page(url, value):
    outline()
    for name in ("label", "annotation", "rev", "skip"):
        response = Client().get(f"{url}?{name}={value}")
        assert response.status_code < 500, (name, value, response.content[:300])


shape_values = st.fixed_dictionaries(
    {"type": st.sampled_from(["rect", "ellipse", "polygon", "circle"]) | json_values},
    optional={
        key: json_values | st.floats() | st.integers()
        for key in ("left", "top", "width", "height", "rx", "ry", "angle")
    }
    | {
        "points": st.lists(st.fixed_dictionaries({}, optional={"x": json_values, "y": json_values}))
    },
)
outline_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "annotations": st.lists(shape_values, max_size=3) | json_values,
            "ticket": json_values,
        },
    )
    | json_values
)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=outline_bodies)
def test_any_json_body_on_the_editors_endpoints_answers_below_500_and_stores_only_good_shapes(
    settings, body
):
    settings.RATELIMIT_ENABLE = False
    pair = validated_pair()
    author = make_voter()
    annotation = drawing.draw(pair, author, [RECT]).annotation
    client = as_voter(author)
    for method, url in [
        ("post", reverse("annotations:draw", args=[pair.pk])),
        ("put", reverse("annotations:revise", args=[annotation.uuid])),
        ("post", reverse("annotations:not-annotatable", args=[pair.pk])),
    ]:
        response = save(client, url, body, method=method)
        assert response.status_code < 500, (url, response.content[:300])
    for revision in AnnotationRevision.objects.all():
        assert shapes.clean_shapes(revision.shapes, 1600, 1200) == revision.shapes


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.dictionaries(
        st.sampled_from(["answer", "ticket", "shown", "yes", "unmarked", "label", "revision"]),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
        max_size=5,
    )
)
def test_any_form_on_the_checking_pages_answers_below_500(settings, fields):
    settings.RATELIMIT_ENABLE = False
    annotation = outline()
    client = as_voter(make_voter())
    for url in (
        reverse("annotations:check-vote", args=[annotation.uuid]),
        "/validate/annotations/grid?label=dog",
        "/validate/annotations/grid",
    ):
        assert client.post(url, fields).status_code < 500, url


def test_the_editor_links_the_visitors_last_outline_to_edit_it():
    validated_pair("cat")
    author = make_voter()
    drawn = drawing.draw(validated_pair("dog"), author, [RECT]).annotation
    page = as_voter(author).get("/annotate?label=cat").text
    assert f'href="/annotate?annotation={drawn.uuid}">Edit your last outline</a>' in page
    assert "Edit your last outline" not in Client().get("/annotate?label=cat").text


def test_skip_serves_another_picture_and_none_when_the_skipped_one_was_the_last():
    first, second = validated_pair(), validated_pair()
    for skipped, other in ((first, second), (second, first)):
        for _ in range(5):
            data = served(Client(), f"/annotate?skip={skipped.pk}")
            assert data["save"]["url"] == reverse("annotations:draw", args=[other.pk])
    second.delete()
    assert "Nothing to outline" in Client().get(f"/annotate?skip={first.pk}").text


def test_the_grid_costs_the_same_queries_for_three_outlines_as_for_twelve():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        client = Client()
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/validate/annotations/grid?label=dog").status_code == 200
        return len(captured)

    for _ in range(3):
        outline("dog")
    few = queries()
    for _ in range(9):
        outline("dog")
    assert Client().get("/validate/annotations/grid?label=dog").text.count("outline-crop") == 12
    assert queries() == few


def test_a_part_is_asked_about_with_its_parent():
    dog = make_label("dog")
    eye = make_label("eye", parent=dog)
    pair = validated_pair(eye)
    assert "Outline the eye of the dog" in Client().get("/annotate").text
    drawing.draw(pair, make_voter(), [RECT])
    page = Client().get("/validate/annotations").text
    assert "Is this outline exactly one eye of the dog, drawn tightly?" in page
