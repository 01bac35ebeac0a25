import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from labels.models import Label, Synonym
from labels.wordlist import WordlistError, parse_wordlists

pytestmark = pytest.mark.django_db

GOOD = """\
[meta]
animal | A living creature.
mammal | An animal with fur. | animal
[labels]
dog | A pet that barks. | mammal | eye, ear | puppy, hound | dogs
cat | A pet that purrs. | mammal | eye | kitten | cats
"""


def write(folder: Path, text: str, name: str = "labels.txt") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def populate(folder: Path) -> str:
    from io import StringIO

    out = StringIO()
    call_command("populate_labels", folder=str(folder), stdout=out)
    return out.getvalue()


def test_it_loads_labels_categories_sublabels_and_synonyms(tmp_path):
    populate(write(tmp_path / "w", GOOD))
    dog = Label.objects.top_level().get(name="dog")
    assert dog.description == "A pet that barks."
    assert dog.plural == "dogs"
    assert [c.name for c in dog.categories.all()] == ["mammal"]
    assert sorted(s.name for s in dog.sublabels.all()) == ["ear", "eye"]
    assert Label.objects.resolve("puppy") == dog
    assert Label.objects.resolve("Dog/Eye").parent == dog
    assert Label.objects.get(name="animal").is_meta
    assert Label.objects.resolve("animal") is None, "meta labels are not offered for tagging"


def test_a_second_run_changes_nothing(tmp_path):
    folder = write(tmp_path / "w", GOOD)
    populate(folder)
    before = (
        Label.objects.count(),
        Synonym.objects.count(),
        Label.categories.through.objects.count(),
    )
    output = populate(folder)
    after = (
        Label.objects.count(),
        Synonym.objects.count(),
        Label.categories.through.objects.count(),
    )
    assert before == after
    assert "0 added, 0 updated" in output


def test_new_entries_are_added_and_removed_ones_reported_not_deleted(tmp_path):
    folder = write(tmp_path / "w", GOOD)
    populate(folder)
    write(
        folder,
        GOOD.replace("cat | A pet that purrs. | mammal | eye | kitten | cats\n", "")
        + "horse | A large animal people ride. | mammal |  |  | horses\n",
    )
    output = populate(folder)
    assert Label.objects.top_level().filter(name="horse").exists()
    assert Label.objects.top_level().filter(name="cat").exists()
    assert "'cat' is in the database but not in the wordlists" in output


def test_the_shipped_vocabulary_loads_with_at_least_150_labels():
    populate(Path(settings.BASE_DIR) / "wordlists" / "en")
    taggable = Label.objects.taggable().top_level()
    assert taggable.count() >= 150
    assert not taggable.filter(description="").exclude(name__in=_misc_names()).exists()


def _misc_names() -> list[str]:
    path = Path(settings.BASE_DIR) / "wordlists" / "en" / "misc.txt"
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD + "dog | Again. | mammal\n",
            "labels.txt:7: 'dog' is already defined at labels.txt:5",
        ),
        (
            GOOD + "cow | A farm animal. | farm animal\n",
            "labels.txt:7: category 'farm animal' of 'cow' is not defined",
        ),
        (
            GOOD + "wolf | Wild. | mammal |  | hound\n",
            "labels.txt:7: synonym 'hound' already belongs to 'dog'",
        ),
        (GOOD + "bird | Flies. | animal |  | cat\n", "labels.txt:7: synonym 'cat' is also a label"),
        ("[meta]\nthing | Stuff. |  | part\n", "labels.txt:2: a meta label cannot have sublabels"),
        ("a | x | | | | | a | extra\n", "labels.txt:1: too many fields (8; at most 7)"),
        ("[things]\n", "labels.txt:1: unknown section"),
        ("dog | x | | eye, eye\n", "labels.txt:1: 'dog' lists the same sublabel twice"),
        ("dog/eye | x\n", "labels.txt:1: a name cannot contain"),
    ],
)
def test_bad_entries_fail_with_the_line_named_and_nothing_written(tmp_path, text, message):
    folder = write(tmp_path / "w", text)
    with pytest.raises(CommandError, match=re.escape(message)):
        populate(folder)
    assert Label.objects.count() == 0


def test_a_cycle_of_categories_is_refused_naming_the_line(tmp_path):
    text = "[meta]\nliving | Alive. | thing\nthing | An object. | creature\ncreature | A being. | living\n"
    with pytest.raises(WordlistError, match=r"labels.txt:\d: categories form a cycle: .*living.*"):
        parse_wordlists(write(tmp_path / "w", text))


def test_a_plain_misc_list_is_accepted(tmp_path):
    folder = write(tmp_path / "w", GOOD)
    write(folder, "# extras\numbrella\nKite\n", name="misc.txt")
    populate(folder)
    assert Label.objects.resolve("kite") is not None
    assert Label.objects.resolve("umbrella").description == ""


def test_articles_come_from_the_file_and_parts_follow_their_own_entry(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "labels.txt").write_text(
        "[labels]\n"
        "person | A human being. |  | hair, arm\n"
        "hair | Strands on a head. |  |  |  | hair | -\n"
        "sky | Above us. |  |  |  | skies | the\n"
    )
    populate(folder)
    assert (
        Label.objects.top_level().get(name="sky").question == "Can you see the sky in this picture?"
    )
    hair = Label.objects.get(name="hair", parent__name="person")
    assert hair.question == "Does the person in this picture have hair?"
    arm = Label.objects.get(name="arm", parent__name="person")
    assert arm.question == "Does the person in this picture have an arm?"


def test_an_unknown_article_is_refused_with_its_line(tmp_path):
    (tmp_path / "labels.txt").write_text("[labels]\nsky | Above us. |  |  |  | skies | da\n")
    with pytest.raises(WordlistError, match="labels.txt:2: the article is one of a, an, the or -"):
        parse_wordlists(tmp_path)


def test_scenes_are_tagged_but_not_outlined_and_meta_labels_neither(tmp_path):
    folder = write(tmp_path / "w", GOOD + "[scenes]\nbeach | Sand by the sea. |  | sand\n")
    populate(folder)
    assert Label.objects.top_level().get(name="dog").annotatable
    beach = Label.objects.top_level().get(name="beach")
    assert not beach.annotatable and not beach.is_meta
    assert Label.objects.resolve("beach") == beach, "a scene is still tagged"
    assert Label.objects.resolve("beach/sand").is_annotatable, "its parts are outlined"
    assert not Label.objects.get(name="animal").annotatable
    assert set(Label.objects.annotatable().values_list("name", flat=True)) == {
        "dog",
        "cat",
        "eye",
        "ear",
        "sand",
    }


def test_moving_a_label_to_the_scenes_updates_it(tmp_path):
    folder = write(tmp_path / "w", GOOD)
    populate(folder)
    write(folder, GOOD.replace("cat | A pet", "[scenes]\ncat | A pet"))
    populate(folder)
    assert not Label.objects.top_level().get(name="cat").annotatable


def test_an_unknown_section_names_the_three(tmp_path):
    with pytest.raises(WordlistError, match=r"use \[meta\], \[labels\] or \[scenes\]"):
        parse_wordlists(write(tmp_path / "w", "[places]\nbeach\n"))


def test_the_shipped_scenes_are_not_outlined():
    entries = {e.name: e for e in parse_wordlists(Path(settings.BASE_DIR) / "wordlists" / "en")}
    assert not entries["beach"].annotatable and not entries["kitchen"].annotatable
    assert entries["dog"].annotatable and not entries["animal"].annotatable
