import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from donations.models import ImageLabel
from donations.pairs import suggest
from labels.models import Label
from tests.helpers import cast, make_image, make_label, make_pair, make_voter

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator() -> Client:
    user = User.objects.create_superuser("curator", "c@example.org", "a long enough password")
    client = Client()
    client.force_login(user)
    return client


def test_the_label_list_counts_images_and_votes_without_extra_queries(
    curator, django_assert_max_num_queries
):
    for n in range(3):
        cast(make_pair(f"label{n}"), make_voter(), True)
    url = reverse("admin:labels_label_changelist")
    with django_assert_max_num_queries(12) as few:
        assert curator.get(url).status_code == 200
    for n in range(3, 30):
        cast(make_pair(f"label{n}"), make_voter(), True)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = curator.get(url)
    assert b"label29" in response.content


def test_merge_shows_what_will_move_before_doing_it(curator):
    source, target = make_label("doggie"), make_label("dog")
    cast(make_pair(source), make_voter(), True)
    url = reverse("admin:labels_label_changelist")
    response = curator.post(url, {"action": "merge", "_selected_action": [source.pk]})
    assert response.status_code == 200
    assert b"Yes, merge them" in response.content
    assert ImageLabel.objects.filter(label=source).count() == 1, "nothing moves before confirming"

    response = curator.post(
        url,
        {"action": "merge", "_selected_action": [source.pk], "confirm": "1", "target": target.name},
    )
    assert response.status_code == 302
    assert ImageLabel.objects.filter(label=target).count() == 1
    assert not Label.objects.filter(pk=source.pk).exists()


def test_deactivate_action_keeps_the_label_and_its_pairs(curator):
    pair = make_pair("dog")
    curator.post(
        reverse("admin:labels_label_changelist"),
        {"action": "deactivate", "_selected_action": [pair.label.pk]},
    )
    pair.label.refresh_from_db()
    assert pair.label.active is False
    assert ImageLabel.objects.filter(pk=pair.pk).exists()


def accept_in_admin(curator, suggestion, **fields):
    url = reverse("admin:labels_labelsuggestion_changelist")
    form = curator.post(url, {"action": "accept", "_selected_action": [suggestion.pk]})
    assert form.status_code == 200 and "Check what each suggestion becomes" in form.content.decode()
    initial = {
        f"s{suggestion.pk}-{name}": form.context["rows"][0][1].initial.get(name, "")
        for name in ("name", "parent", "plural", "description", "categories")
    }
    data = {**initial, **{f"s{suggestion.pk}-{k}": v for k, v in fields.items()}}
    return curator.post(
        url,
        {"action": "accept", "_selected_action": [suggestion.pk], "confirm": "1", **data},
        follow=True,
    )


def test_accepting_a_suggestion_in_the_admin_tags_the_waiting_images(curator):
    image = make_image()
    suggestion = suggest("paddle board", image)
    accept_in_admin(curator, suggestion, plural="paddle boards")
    pair = ImageLabel.objects.get(image=image, label__name="paddle board")
    assert pair.label.plural == "paddle boards"


def test_a_suggested_part_becomes_a_part_not_a_label_named_with_a_slash(curator):
    cat = make_label("cat")
    image = make_image()
    suggestion = suggest("cat/wing", image)
    response = accept_in_admin(curator, suggestion)
    assert "Accepted “cat/wing” as the label “cat/wing”" in response.content.decode()
    wing = Label.objects.get(name="wing")
    assert wing.parent == cat
    assert not Label.objects.filter(name="cat/wing").exists()


def test_the_curator_corrects_a_suggestion_before_accepting_it(curator):
    make_label("animal", is_meta=True)
    suggestion = suggest("Wombatt", make_image())
    response = accept_in_admin(curator, suggestion, name="wombat", categories="animal")
    assert "Accepted" in response.content.decode()
    wombat = Label.objects.get(name="wombat")
    assert [c.name for c in wombat.categories.all()] == ["animal"]
    bad = suggest("dog/tail", make_image())
    response = accept_in_admin(curator, bad)
    assert "There is no label “dog” to be the parent" in response.content.decode()
    assert not Label.objects.filter(name="tail").exists()


def test_suggestions_count_people_not_pictures(curator):
    donor = make_voter()
    for _ in range(3):
        suggest("unicycle", make_image(donor=donor))
    suggest("unicycle", make_image(donor=make_voter()))
    page = curator.get(reverse("admin:labels_labelsuggestion_changelist"))
    assert page.context["cl"].result_list[0].n_people == 2


def test_label_pages_in_the_admin_render(curator):
    dog = make_label("dog", description="Barks.")
    make_label("eye", parent=dog)
    assert curator.get(reverse("admin:labels_label_change", args=[dog.pk])).status_code == 200
    assert (
        curator.get(reverse("admin:labels_label_changelist") + "?kind=sublabel").status_code == 200
    )
    assert curator.get(reverse("admin:labels_labelsuggestion_changelist")).status_code == 200
    assert curator.get(reverse("admin:labels_label_changelist") + "?q=eye").status_code == 200
    make_image()
