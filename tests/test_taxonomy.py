import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from donations.models import ImageLabel
from donations.pairs import accept_suggestion, reject_suggestion, suggest
from labels import lookup
from labels.models import Label, LabelSuggestion, Synonym
from tests.helpers import cast, make_image, make_label, make_pair, make_voter
from validation.merge import merge_labels
from validation.models import Vote

pytestmark = pytest.mark.django_db


def test_label_names_are_unique_ignoring_case():
    make_label("dog")
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(name="Dog", slug="dog-2")


def test_the_same_part_name_may_belong_to_different_labels():
    dog, cat = make_label("dog"), make_label("cat")
    make_label("eye", parent=dog)
    make_label("eye", parent=cat)
    assert Label.objects.filter(name="eye").count() == 2
    assert Label.objects.resolve("cat/eye").parent == cat


def test_a_label_used_by_images_cannot_be_deleted():
    pair = make_pair("dog")
    with pytest.raises(Exception, match="protected"):
        pair.label.delete()


def test_deactivated_labels_are_not_offered():
    dog = make_label("dog")
    make_label("eye", parent=dog)
    Label.objects.filter(pk=dog.pk).update(active=False)
    assert Label.objects.resolve("dog") is None
    assert Label.objects.resolve("dog/eye") is None


class TestMerge:
    def test_it_moves_pairs_and_votes_to_the_target(self):
        puppy, dog = make_label("doggy"), make_label("dog")
        pair = make_pair(puppy)
        cast(pair, make_voter(), True)
        moved = merge_labels(puppy, dog)
        pair.refresh_from_db()
        assert pair.label == dog and pair.num_yes == 1
        assert moved["pairs_moved"] == 1
        assert not Label.objects.filter(pk=puppy.pk).exists()
        assert Label.objects.resolve("doggy") == dog, "the old name becomes a synonym"

    def test_pairs_on_the_same_image_are_combined_and_double_votes_dropped(self):
        source, target = make_label("hound dog"), make_label("dog")
        image = make_image()
        both, only_source, only_target = make_voter(), make_voter(), make_voter()
        source_pair, target_pair = make_pair(source, image), make_pair(target, image)
        cast(source_pair, both, False)
        cast(target_pair, both, True)
        cast(source_pair, only_source, True)
        cast(target_pair, only_target, True)

        moved = merge_labels(source, target)

        assert ImageLabel.objects.filter(image=image).count() == 1
        target_pair.refresh_from_db()
        assert (target_pair.num_yes, target_pair.num_no) == (3, 0)
        assert Vote.objects.get(pair=target_pair, voter=both).answer == Vote.Answer.YES
        assert moved == {
            "pairs_moved": 0,
            "pairs_combined": 1,
            "votes_moved": 1,
            "votes_dropped": 1,
        }

    def test_sublabels_merge_with_parts_of_the_same_name(self):
        source, target = make_label("doge"), make_label("dog")
        source_eye, target_eye = make_label("eye", parent=source), make_label("eye", parent=target)
        make_label("tail", parent=source)
        pair = make_pair(source_eye)
        merge_labels(source, target)
        pair.refresh_from_db()
        assert pair.label == target_eye
        assert sorted(target.sublabels.values_list("name", flat=True)) == ["eye", "tail"]

    def test_members_and_synonyms_follow_the_target(self):
        pet, animal, dog = (
            make_label("pets", is_meta=True),
            make_label("animal", is_meta=True),
            make_label("dog"),
        )
        dog.categories.add(pet)
        Synonym.objects.create(name="domestic animal", label=pet)
        merge_labels(pet, animal)
        assert list(dog.categories.all()) == [animal]
        assert Label.objects.filter(synonyms__name="domestic animal").get() == animal

    def test_a_failure_leaves_everything_as_it_was(self):
        source, target = make_label("doggo"), make_label("dog")
        make_pair(source)
        with pytest.raises(ValueError):
            merge_labels(source, source)
        assert ImageLabel.objects.filter(label=source).count() == 1
        assert ImageLabel.objects.filter(label=target).count() == 0


class TestSuggestions:
    def test_unknown_text_is_counted_as_a_suggestion(self):
        image = make_image()
        suggest("Hover Board", image)
        suggestion = LabelSuggestion.objects.record("hover  board")
        assert suggestion.name == "hover board"
        assert suggestion.times_requested == 2
        assert suggestion.uses.count() == 1

    def test_accepting_creates_the_label_and_turns_uses_into_pairs(self):
        first, second = make_image(), make_image()
        suggest("hoverboard", first)
        suggestion = suggest("hoverboard", second)
        label = accept_suggestion(suggestion, description="A board that hovers.")
        assert label.name == "hoverboard"
        assert set(ImageLabel.objects.filter(label=label).values_list("image", flat=True)) == {
            first.pk,
            second.pk,
        }
        suggestion.refresh_from_db()
        assert suggestion.status == "accepted" and suggestion.uses.count() == 0

    def test_accepting_twice_is_refused(self):
        suggestion = LabelSuggestion.objects.record("kite surfing")
        accept_suggestion(suggestion)
        with pytest.raises(ValueError, match="already accepted"):
            accept_suggestion(LabelSuggestion.objects.get(pk=suggestion.pk))

    def test_rejecting_drops_the_waiting_uses(self):
        suggestion = suggest("thing", make_image())
        reject_suggestion(suggestion)
        suggestion.refresh_from_db()
        assert suggestion.status == "rejected" and suggestion.uses.count() == 0
        assert not Label.objects.filter(name="thing").exists()


class TestLabelLookup:
    """labels.lookup: the per-process map of label names that votes read."""

    def test_spellings_of_one_name_share_one_entry(self):
        dog = make_label("dog")
        for text in ("dog", "Dog", "  DOG ", "dog\x00"):
            assert lookup.resolve(text) == dog
        assert list(lookup._known) == ["dog"]

    def test_overlong_text_is_unknown_and_never_remembered(self):
        make_label("dog")
        assert lookup.resolve("dog" + " " * 5_000) is None
        assert lookup._known == {}

    def test_the_admins_deactivate_action_is_seen_at_once(self, client):
        dog = make_label("dog")
        assert lookup.resolve("dog") == dog
        client.force_login(
            User.objects.create_superuser("root", "r@example.org", "a long enough password")
        )
        response = client.post(
            "/admin/labels/label/",
            {"action": "deactivate", "_selected_action": [dog.pk]},
        )
        assert response.status_code == 302
        assert lookup.resolve("dog") is None


class TestQuestions:
    """Every question is plain English: the right article, and parts asked as parts."""

    @pytest.mark.parametrize(
        "name, article, question",
        [
            ("dog", "", "Is there a dog in this picture?"),
            ("apple", "", "Is there an apple in this picture?"),
            ("hour", "an", "Is there an hour in this picture?"),
            ("unicorn", "a", "Is there a unicorn in this picture?"),
            ("grass", "-", "Is there grass in this picture?"),
            ("sky", "the", "Can you see the sky in this picture?"),
        ],
    )
    def test_a_label_is_asked_with_its_article(self, name, article, question):
        assert make_label(name, article=article).question == question

    def test_a_part_is_asked_about_its_parent(self):
        dog = make_label("dog")
        assert make_label("eye", parent=dog).question == "Does the dog in this picture have an eye?"
        person = make_label("person")
        hair = make_label("hair", parent=person, article="-")
        assert hair.question == "Does the person in this picture have hair?"


def test_the_label_field_suggests_a_new_label_at_once_and_escapes_names(client):
    make_label("dog")
    assert 'value="dog"' in client.get("/browse").content.decode()
    make_label('cat"><script>')
    body = client.get("/browse").content.decode()
    assert 'value="cat&quot;&gt;&lt;script&gt;"' in body and "<script>" not in body
