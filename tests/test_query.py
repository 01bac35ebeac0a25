"""The export query language: syntax, precedence, errors, labels, and one safe SQL query."""

import random

import pytest
from django.contrib.auth.models import User
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from donations.models import Image, ImageCollection
from exports.export import Export
from exports.query import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Attribute,
    Collection,
    LabelQuery,
    Not,
    Or,
    QueryError,
    Term,
    compose,
    parse,
)
from labels.models import Label
from tests.helpers import make_image, make_label, make_pair

dog, cat, grass = Term("dog"), Term("cat"), Term("grass")


def matching(text: str, **thresholds) -> set:
    """The uuids of the images a query matches, by running its SQL."""
    sql = LabelQuery.parse(text).image_ids_sql(**thresholds)
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        ids = [pk for (pk,) in cursor.fetchall()]
    return set(Image.objects.filter(pk__in=ids).values_list("uuid", flat=True))


class TestSyntax:
    def test_not_binds_tighter_than_and_which_binds_tighter_than_or(self):
        assert parse("dog | cat & ~grass") == Or((dog, And((cat, Not(grass)))))
        assert parse("~dog & cat | grass") == Or((And((Not(dog), cat)), grass))

    def test_parentheses_override_precedence(self):
        assert parse("(dog | cat) & ~grass") == And((Or((dog, cat)), Not(grass)))
        assert parse("~(dog & cat)") == Not(And((dog, cat)))

    def test_it_flattens_repeated_operators(self):
        assert parse("(dog | cat) | grass") == parse("dog | cat | grass") == Or((dog, cat, grass))

    @pytest.mark.parametrize(
        "text",
        [
            "dog.has='eye'",
            'dog.has="eye"',
            "dog.has = 'eye'",
            "dog .has= 'eye'",
            "  DOG.HAS='Eye'  ",
            "dog.has=eye",
        ],
    )
    def test_it_reads_a_part_however_it_is_spaced_or_quoted(self, text):
        assert parse(text) == Term("dog", "eye")

    def test_names_may_contain_spaces_and_are_normalised(self):
        assert parse("Traffic  Light | ice cream&dog") == Or(
            (Term("traffic light"), And((Term("ice cream"), dog)))
        )

    def test_quotes_allow_any_character_and_double_to_escape_themselves(self):
        assert parse("'it''s (a) dog' | \"a.b=c\"") == Or((Term("it's (a) dog"), Term("a.b=c")))

    def test_it_prints_a_canonical_query_that_parses_back(self):
        tree = parse("( (dog|cat) & ~ ( grass | 'it''s' ) ) | dog.has = \"eye\"")
        assert str(tree) == "(dog | cat) & ~(grass | 'it''s') | dog.has='eye'"
        assert parse(str(tree)) == tree

    @pytest.mark.parametrize(
        ("text", "position", "message"),
        [
            ("dog & )", 6, "expected a label name at position 6"),
            ("", 0, "expected a label name at position 0"),
            ("   ", 3, "expected a label name at position 3"),
            ("dog |", 5, "expected a label name at position 5"),
            ("(dog | cat", 10, "expected ')' at position 10"),
            ("dog)", 3, "expected '&', '|' or the end of the query at position 3"),
            ("dog cat) | grass", 7, "at position 7"),
            ("dog.has=", 8, "expected the part's name"),
            ("dog.hat='eye'", 4, "expected 'has' after '.'"),
            ("dog='eye'", 3, "expected .has before '='"),
            ("'dog | cat", 0, "expected a closing ' for the name that starts at position 0"),
            ("dog & ~", 7, "expected a label name at position 7"),
            ("dog\x00cat", 3, "unexpected character U+0000 at position 3"),
        ],
    )
    def test_it_says_what_it_expected_and_where(self, text, position, message):
        with pytest.raises(QueryError) as caught:
            parse(text)
        assert caught.value.position == position
        assert message in caught.value.message

    def test_it_refuses_a_query_that_is_too_long(self):
        with pytest.raises(QueryError, match="too long"):
            parse("dog | " * (MAX_LENGTH // 6) + "cat")

    def test_it_refuses_a_query_that_nests_too_deeply(self):
        with pytest.raises(QueryError, match="nests too deeply"):
            parse("(" * (MAX_DEPTH + 1) + "dog" + ")" * (MAX_DEPTH + 1))
        with pytest.raises(QueryError, match="nests too deeply"):
            parse("~" * (MAX_DEPTH + 1) + "dog")
        assert parse("(" * MAX_DEPTH + "dog" + ")" * MAX_DEPTH) == dog


# A few real names, the operators, and text people paste by mistake or on purpose.
TOKENS = st.sampled_from(
    [
        "dog",
        "cat",
        "ice cream",
        "dog.has='eye'",
        "'it''s'",
        '"o\'reilly; drop table labels_label; --"',
        "|",
        "&",
        "~",
        "(",
        ")",
        " ",
        "'",
        '"',
        ";",
        "'; DROP TABLE donations_image; --",
        "%s",
        "%(x)s",
        "\\",
        "=",
        ".has",
        "\x00",
        "🐶",
        "ñandú",
        "((((((((((",
        "\n",
    ]
)
# Well-formed queries over the vocabulary fixture's names, hostile ones included.
WELL_FORMED = st.recursive(
    st.sampled_from(
        [
            "dog",
            " cat ",
            "'ICE  cream'",
            "dog.has = 'eye'",
            "'it''s'",
            '"o\'reilly; drop table labels_label; --"',
        ]
    ),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["|", " & ", "&"]), inner).map("".join),
        inner.map(lambda query: f"~{query}"),
        inner.map(lambda query: f"( {query})"),
    ),
    max_leaves=12,
)
HOSTILE = st.one_of(st.text(max_size=60), st.lists(TOKENS, max_size=25).map("".join), WELL_FORMED)


@given(HOSTILE)
@hsettings(max_examples=300, deadline=None)
def test_any_text_parses_or_fails_with_a_position(text):
    try:
        tree = parse(text)
    except QueryError as error:
        assert 0 <= error.position <= len(text)
        assert f"position {error.position}" in error.message
    else:
        canonical = str(tree)
        if len(canonical) <= MAX_LENGTH:
            assert parse(canonical) == tree


@pytest.mark.django_db
class TestLabels:
    def test_it_names_every_unknown_label(self):
        make_label("cat")
        with pytest.raises(QueryError) as caught:
            LabelQuery.parse("dgo | cat & ~caat")
        assert caught.value.message == "unknown labels: dgo, caat"
        assert caught.value.position == 0

    def test_it_names_an_unknown_part_as_written(self):
        make_label("eye", parent=make_label("dog"))
        with pytest.raises(QueryError, match=r"unknown label: dog.has='tail'"):
            LabelQuery.parse("dog.has='eye' | dog.has='tail'")

    def test_a_part_is_not_a_top_level_label(self):
        make_label("eye", parent=make_label("dog"))
        with pytest.raises(QueryError, match="unknown label: eye"):
            LabelQuery.parse("eye")

    def test_it_finds_labels_whatever_their_case_and_spacing(self):
        label = make_label("traffic light")
        assert LabelQuery.parse("TRAFFIC   light").label_ids == {Term("traffic light"): label.pk}


@pytest.mark.django_db
class TestMatching:
    @pytest.fixture(autouse=True)
    def images(self):
        dog_label = make_label("dog")
        eye = make_label("eye", parent=dog_label)
        self.dog = make_pair("dog", num_yes=4, num_no=0, probability=1.0, confidence=0.5).image
        self.dog_cat = make_pair("dog", probability=0.5).image
        make_pair("cat", image=self.dog_cat, probability=1.0, confidence=0.9)
        self.cat_grass = make_pair("cat", probability=0.9).image
        make_pair("grass", image=self.cat_grass)
        self.eye = make_pair(eye, image=make_image()).image
        self.bare = make_image()
        hidden = make_image(status=Image.Status.PENDING)
        make_pair("dog", image=hidden, probability=1.0)
        self.public = {self.dog.uuid, self.dog_cat.uuid, self.cat_grass.uuid, self.eye.uuid}
        self.public.add(self.bare.uuid)

    def test_a_label_matches_images_with_that_pair(self):
        assert matching("dog") == {self.dog.uuid, self.dog_cat.uuid}

    def test_a_part_matches_only_the_part(self):
        assert matching("dog.has='eye'") == {self.eye.uuid}

    def test_and_or_not_follow_the_precedence(self):
        assert matching("dog & cat") == {self.dog_cat.uuid}
        assert matching("dog | cat & ~grass") == {self.dog.uuid, self.dog_cat.uuid}
        assert matching("(dog | cat) & ~grass") == {self.dog.uuid, self.dog_cat.uuid}
        assert matching("(dog | cat) & ~dog") == {self.cat_grass.uuid}
        assert matching("~dog & ~cat") == {self.eye.uuid, self.bare.uuid}

    def test_not_matches_only_public_images(self):
        assert matching("~grass") == self.public - {self.cat_grass.uuid}

    def test_thresholds_decide_which_pairs_count(self):
        assert matching("dog", min_probability=0.8) == {self.dog.uuid}
        assert matching("cat", min_confidence=0.8) == {self.dog_cat.uuid}
        assert matching("~dog", min_probability=0.8) == self.public - {self.dog.uuid}

    def test_a_query_of_many_labels_is_one_sql_query_after_one_label_lookup(
        self, django_assert_num_queries
    ):
        names = [f"label {n}" for n in range(40)]
        for name in names:
            make_label(name)
        text = " | ".join(names) + " | (dog & ~cat) | ~(grass | dog.has='eye')"
        with django_assert_num_queries(2):
            matching_sql = LabelQuery.parse(text).image_ids_sql()
            with connection.cursor() as cursor:
                cursor.execute(matching_sql.text, matching_sql.params)
                # Neither grass nor an eye: the two dog images and the bare one.
                assert len(cursor.fetchall()) == 3


@pytest.mark.django_db
class TestInjection:
    def test_sql_in_a_query_is_only_ever_an_unknown_label(self):
        make_label("dog")
        for text in ["dog'; DROP TABLE labels_label; --", "dog | x); DELETE FROM donations_image"]:
            with pytest.raises(QueryError):
                LabelQuery.parse(text)
        assert Label.objects.filter(name="dog").exists()

    def test_a_label_named_like_sql_is_matched_as_a_name_not_run(self):
        name = "robert'); drop table donations_image; --"
        pair = make_pair(make_label(name))
        query = LabelQuery.parse("'robert''); DROP TABLE donations_image; --'")
        sql = query.image_ids_sql()
        assert "robert" not in sql.text and "robert" not in str(sql.params)
        assert matching("'robert''); drop table donations_image; --'") == {pair.image.uuid}
        assert Image.objects.count() == 1


@pytest.mark.django_db
@given(HOSTILE)
@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_hostile_queries_either_fail_cleanly_or_run_without_database_errors(vocabulary, text):
    try:
        query = LabelQuery.parse(text)
    except QueryError:
        return
    sql = query.image_ids_sql(min_probability=0.5, min_confidence=0.1)
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)  # any database error fails the test
        cursor.fetchall()
    assert Label.objects.count() == len(vocabulary)


@pytest.fixture
def vocabulary(db):
    """The labels the hostile-query tokens name, some with hostile names themselves."""
    names = ["dog", "cat", "ice cream", "it's", "o'reilly; drop table labels_label; --"]
    labels = [make_label(name) for name in names]
    labels.append(make_label("eye", parent=labels[0]))
    for label in labels:
        make_pair(label)
    return labels


@pytest.mark.django_db
def test_a_part_may_be_written_as_the_pages_show_it():
    dog = make_label("dog")
    make_label("eye", parent=dog)
    assert str(LabelQuery.parse("dog/eye")) == "dog.has='eye'"
    assert (
        LabelQuery.parse("dog / eye | dog").label_ids
        == LabelQuery.parse("dog.has='eye' | dog").label_ids
    )
    with pytest.raises(QueryError, match="the part's name"):
        LabelQuery.parse("dog/")


# Queries over five labels, a part, an attribute and a collection, each named as often as
# the draw likes: what the compiler's sharing of repeated labels
# (exports.query._Compiler.condition) must get right.
NAMES = ["dog", "cat", "grass", "tree", "car"]
EYE = Term("dog", "eye")
WIDE = Attribute("image", "width", ">=", 1024.0)
TREES = Collection("ada", "trees")
ANY_SHAPE = st.recursive(
    st.sampled_from([Term(name) for name in NAMES] + [EYE, WIDE, TREES]),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=4).map(lambda operands: And(tuple(operands))),
        st.lists(inner, min_size=2, max_size=4).map(lambda operands: Or(tuple(operands))),
        inner.map(Not),
    ),
    max_leaves=14,
)


def holds(node, picture: dict) -> bool:
    """Whether `picture` matches `node`, by the query's meaning."""
    if isinstance(node, Term):
        return (node.name, node.part) in picture["labels"]
    if isinstance(node, Attribute):
        return picture["width"] >= 1024
    if isinstance(node, Collection):
        return picture["in_trees"]
    if isinstance(node, Not):
        return not holds(node.operand, picture)
    values = [holds(operand, picture) for operand in node.operands]
    return all(values) if isinstance(node, And) else any(values)


@pytest.fixture
def sixty_pictures(db):
    """Sixty pictures with validated pairs of random labels (and open ones, which the
    export's default filter leaves out), dog eyes, two widths, some in ada's trees."""
    rng = random.Random(7)
    ada = User.objects.create_user("ada", password="x" * 20)
    trees = ImageCollection.objects.create(owner=ada, name="trees")
    labels = {name: make_label(name) for name in NAMES}
    eye = make_label("eye", parent=labels["dog"])
    pictures = {}
    for _ in range(60):
        image = make_image(width=rng.choice([640, 2048]))
        passing = set()
        for name in NAMES:
            draw = rng.random()
            if draw < 0.45:
                make_pair(labels[name], image=image, status="validated")
                passing.add((name, ""))
            elif draw < 0.6:
                make_pair(labels[name], image=image, status="open")
        if ("dog", "") in passing and rng.random() < 0.5:
            make_pair(eye, image=image, status="validated")
            passing.add(("dog", "eye"))
        in_trees = rng.random() < 0.4
        if in_trees:
            trees.images.add(image)
        pictures[image.pk] = {"labels": passing, "width": image.width, "in_trees": in_trees}
    return pictures


@pytest.mark.django_db
@given(ANY_SHAPE)
@hsettings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_query_naming_labels_more_than_once_matches_what_it_means(sixty_pictures, tree):
    sql = compose(
        "SELECT img.id FROM donations_image img WHERE ",
        Export(LabelQuery.parse(str(tree))).matching(),  # validated pairs only
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        found = {pk for (pk,) in cursor.fetchall()}
    assert found == {pk for pk, picture in sixty_pictures.items() if holds(tree, picture)}


@pytest.fixture
def every_combination(db):
    """One public picture per subset of {dog, cat, grass}, and a pending one with all three."""
    pictures = {}
    for mask in range(8):
        names = frozenset(n for bit, n in enumerate(["dog", "cat", "grass"]) if mask >> bit & 1)
        image = make_image()
        for name in names:
            make_pair(name, image=image)
        pictures[names] = image.uuid
    hidden = make_image(status=Image.Status.PENDING)
    for name in ("dog", "cat", "grass"):
        make_pair(name, image=hidden)
    return pictures


def subqueries(text: str) -> int:
    return LabelQuery.parse(text).condition().text.count("FROM validation_imagelabel p")


@pytest.mark.django_db
class TestRepeatedLabels:
    @pytest.fixture(autouse=True)
    def labels(self, every_combination):
        self.pictures = every_combination

    def test_a_label_and_its_negation_are_looked_up_once_and_match_every_public_picture(self):
        assert subqueries("dog | ~dog") == 1
        assert matching("dog | ~dog") == set(self.pictures.values())

    def test_a_label_and_its_negation_together_are_looked_up_once_and_match_nothing(self):
        assert subqueries("dog & ~dog") == 1
        assert matching("dog & ~dog") == set()

    def test_a_label_shared_by_two_alternatives_is_looked_up_once(self):
        assert subqueries("(dog & cat) | (dog & grass)") == 3
        assert matching("(dog & cat) | (dog & grass)") == {
            uuid for names, uuid in self.pictures.items() if "dog" in names and names - {"dog"}
        }

    def test_a_label_named_twice_in_one_list_is_one_lookup_with_the_others(self):
        assert subqueries("dog | cat | dog") == 1

    def test_sharing_a_label_is_left_out_when_it_would_write_more_subqueries(self):
        # Expanded on dog, the rest would be written twice: five subqueries against three.
        assert subqueries("(dog | cat) & (dog | grass) & (cat | grass)") == 3
        assert matching("(dog | cat) & (dog | grass) & (cat | grass)") == {
            uuid for names, uuid in self.pictures.items() if len(names) >= 2
        }

    def test_a_query_naming_each_label_once_compiles_as_before(self):
        sql = LabelQuery.parse("dog & ~cat").condition().text
        assert "CASE" not in sql and sql.count("EXISTS") == 2


@pytest.mark.django_db
def test_a_threshold_of_zero_is_left_out_and_any_other_is_kept():
    make_label("dog")
    assert "probability" not in LabelQuery.parse("dog").condition().text
    negatives = Export(LabelQuery.parse("dog"), negatives=True).negative().text
    assert "probability" not in negatives and "confidence" not in negatives
    sql = LabelQuery.parse("dog").condition(min_probability=0.5, min_confidence=0.25)
    assert "p.probability >= %s AND p.confidence >= %s" in sql.text
    assert sql.params[-2:] == [0.5, 0.25]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["probability", "confidence"])
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_a_pair_share_outside_zero_to_one_is_refused_by_the_database(field, value):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        make_pair("dog", **{field: value})
