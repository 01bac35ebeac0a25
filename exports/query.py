"""The export query language: which public images an export contains.

A query names labels and combines them::

    dog                       images with a dog
    dog.has='eye'             images with a dog's eye (a part; also dog.has = "eye")
    dog | cat                 a dog or a cat
    dog & ~cat                a dog and no cat
    (dog | cat) & grass       parentheses group
    'traffic light'           quotes allow any character in a name ('' is a quote)
    image.collection='ada/trees'   images in the collection "trees" of the account ada
    image.width >= 1024px     the picture's size in pixels (also image.height)
    image.num_annotations > 2 pictures with more than two accepted outlines
    annotation.coverage > 30% an accepted outline covers more than 30 % of the picture

Precedence, tightest first: ``~`` (not), then ``&`` (and), then ``|`` (or). So
``dog | cat & ~grass`` means ``dog | (cat & (~grass))``. Names are compared
without regard to case or repeated spaces, so ``Traffic  Light`` is ``traffic light``.

An image matches a label when it has that image–label pair and the pair passes
the export's pair filter: the statuses asked for (validated, by default, and
rejected too with negatives) and the thresholds (probability and confidence at
least the minimums). ``~dog`` matches the public images without such a pair.

The grammar::

    query := or
    or    := and ('|' and)*
    and   := not ('&' not)*
    not   := '~' not | '(' or ')' | term
    term  := name ['.' 'has' '=' name] | 'image' '.' 'collection' '=' 'owner/name'
           | attribute
    attribute := ('image.width' | 'image.height') op number ['px']
               | 'image.num_annotations' op number
               | 'annotation.coverage' op number ['%']
    op    := '>' | '<' | '>=' | '<=' | '='
    name  := a run of characters other than & | ~ ( ) ' " = .   (trimmed)
           | 'quoted' | "quoted"

A whole query compiles to one SQL condition over the image table, made of
EXISTS / NOT EXISTS subqueries; a label named more than once is looked up once
per picture (_Compiler.condition). Label names are resolved to ids first (one
query); every value reaches the database as a parameter, never as SQL text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db.models import Q
from django.db.models.functions import Lower

from donations.models import Image, ImageCollection
from labels.models import Label, normalize_name

MAX_LENGTH = 2000
MAX_DEPTH = 32  # nested parentheses and ~ together
MAX_TERMS = 50  # terms beyond this make a query that can tie up a worker
# Labels named more than once that are looked up once per picture (each doubles the SQL).
MAX_SHARED_TERMS = 3

NOT_IN_NAMES = frozenset("&|~()'\"=./")
QUOTES = "'\""


class QueryError(ValueError):
    """A query that cannot run: what is wrong, and at which 0-based character."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position


# --- The syntax tree -----------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A label, or a part of a label (`dog.has='eye'` is Term('dog', 'eye'))."""

    name: str
    part: str = ""
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        if self.part:
            return f"{_written(self.name)}.has={_quoted(self.part)}"
        return _written(self.name)


@dataclass(frozen=True)
class Collection:
    """An account's image collection: `image.collection='ada/trees'`."""

    owner: str
    name: str
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"image.collection={_quoted(f'{self.owner}/{self.name}')}"


@dataclass(frozen=True)
class Not:
    operand: Node

    def __str__(self) -> str:
        return f"~{_grouped(self.operand, (And, Or))}"


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " & ".join(_grouped(operand, (Or,)) for operand in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " | ".join(str(operand) for operand in self.operands)


@dataclass(frozen=True)
class Attribute:
    """A comparison of a picture's attribute: `image.width >= 1024px`."""

    subject: str  # "image" or "annotation"
    name: str
    op: str
    value: float
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        number = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.subject}.{self.name} {self.op} {number}{ATTRIBUTES[self.subject, self.name]}"


# The attributes a query may compare, and the unit written after the number.
ATTRIBUTES = {
    ("image", "width"): "px",
    ("image", "height"): "px",
    ("image", "num_annotations"): "",
    ("annotation", "coverage"): "%",
}
OPERATORS = (">=", "<=", ">", "<", "=")
MAX_ATTRIBUTE_VALUE = 10**9

Node = Term | Collection | Not | And | Or | Attribute


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _written(name: str) -> str:
    """A name as it can be typed back: bare when it can be, quoted otherwise."""
    return _quoted(name) if NOT_IN_NAMES.intersection(name) else name


def _grouped(node: Node, needs_parentheses: tuple[type, ...]) -> str:
    return f"({node})" if isinstance(node, needs_parentheses) else str(node)


def terms_of(node: Node) -> Iterator[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Collection | Attribute):
        return
    elif isinstance(node, Not):
        yield from terms_of(node.operand)
    else:
        for operand in node.operands:
            yield from terms_of(operand)


def _asked_for(node: Node, negated: bool = False) -> Iterator[Term]:
    """The terms under an even number of ~: ~~dog asks for a dog."""
    if isinstance(node, Term):
        if not negated:
            yield node
    elif isinstance(node, Collection | Attribute):
        return
    elif isinstance(node, Not):
        yield from _asked_for(node.operand, not negated)
    else:
        for operand in node.operands:
            yield from _asked_for(operand, negated)


# --- Parsing -------------------------------------------------------------------


def parse(text: str) -> Node:
    """The syntax tree of a query, or QueryError saying what was expected where."""
    if len(text) > MAX_LENGTH:
        raise QueryError(
            f"the query is too long: {len(text):,} characters, at most {MAX_LENGTH:,}",
            MAX_LENGTH,
        )
    return _Parser(text).query()


def _flat(kind: type[And] | type[Or], operands: list[Node]) -> Node:
    """`(a | b) | c` is `a | b | c`: one tree for one meaning."""
    if len(operands) == 1:
        return operands[0]
    flat: list[Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else [operand])
    return kind(tuple(flat))


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.depth = 0
        self.terms = 0

    def error(self, expected: str, position: int | None = None) -> QueryError:
        position = self.pos if position is None else position
        if position < len(self.text):
            found = f", found {self.text[position]!r}"
        else:
            found = ", found the end of the query"
        return QueryError(f"expected {expected} at position {position}{found}", position)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def take(self, char: str) -> bool:
        self.skip_space()
        if self.text.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    @contextmanager
    def nested(self) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(
                f"the query nests too deeply (more than {MAX_DEPTH} levels) at position {self.pos}",
                self.pos,
            )
        yield
        self.depth -= 1

    def query(self) -> Node:
        node = self.or_()
        self.skip_space()
        if self.pos < len(self.text):
            raise self.error("'&', '|' or the end of the query")
        return node

    def or_(self) -> Node:
        operands = [self.and_()]
        while self.take("|"):
            operands.append(self.and_())
        return _flat(Or, operands)

    def and_(self) -> Node:
        operands = [self.not_()]
        while self.take("&"):
            operands.append(self.not_())
        return _flat(And, operands)

    def not_(self) -> Node:
        if self.take("~"):
            with self.nested():
                return Not(self.not_())
        if self.take("("):
            with self.nested():
                node = self.or_()
            if not self.take(")"):
                raise self.error("')'")
            return node
        return self.term()

    def term(self) -> Term | Collection | Attribute:
        self.skip_space()
        start = self.pos
        name = self.name("a label name")
        part = ""
        if self.take("."):
            self.skip_space()
            if name == "image" and self.text[self.pos : self.pos + 10].lower() == "collection":
                return self.collection(start)
            word = re.match(r"[A-Za-z_]+", self.text[self.pos :])
            attribute = (name, word.group(0).lower()) if word else None
            if attribute in ATTRIBUTES:
                self.pos += len(word.group(0))
                return self.attribute(attribute, start)
            if self.text[self.pos : self.pos + 3].lower() != "has":
                raise self.error("'has' after '.' (as in dog.has='eye')")
            self.pos += 3
            if not self.take("="):
                raise self.error("'=' after .has (as in dog.has='eye')")
            part = self.name("the part's name (as in dog.has='eye')")
        elif self.take("/"):  # the way pages show a part: dog/eye
            part = self.name("the part's name (as in dog/eye)")
        elif self.take("="):
            raise self.error(".has before '=' (as in dog.has='eye')", self.pos - 1)
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(
                f"the query names too many labels (more than {MAX_TERMS}) at position {start}",
                start,
            )
        return Term(name, part, start)

    def collection(self, start: int) -> Collection:
        self.pos += len("collection")
        if not self.take("="):
            raise self.error("'=' after image.collection (as in image.collection='ada/trees')")
        value_at = self.pos
        value = self.name("the collection, as in image.collection='ada/trees'")
        owner, slash, name = value.partition("/")
        if not (slash and owner.strip() and name.strip()):
            raise QueryError(
                "name the collection with its owner, as in image.collection='ada/trees', "
                f"at position {value_at}",
                value_at,
            )
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(
                f"the query names too many labels (more than {MAX_TERMS}) at position {start}",
                start,
            )
        return Collection(owner.strip(), name.strip(), start)

    def attribute(self, attribute: tuple[str, str], start: int) -> Attribute:
        self.skip_space()
        op = next((op for op in OPERATORS if self.text.startswith(op, self.pos)), None)
        if op is None:
            raise self.error("one of > < >= <= = after the attribute")
        self.pos += len(op)
        self.skip_space()
        number = re.match(r"\d+(\.\d+)?", self.text[self.pos :])
        if not number:
            raise self.error("a number")
        value = float(number.group(0))
        if value > MAX_ATTRIBUTE_VALUE:
            raise self.error(f"a number up to {MAX_ATTRIBUTE_VALUE:,}")
        self.pos += len(number.group(0))
        unit = ATTRIBUTES[attribute]
        if unit and self.text.startswith(unit, self.pos):
            self.pos += len(unit)
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(
                f"the query names too many labels (more than {MAX_TERMS}) at position {start}",
                start,
            )
        return Attribute(*attribute, op, value, start)

    def name(self, expected: str) -> str:
        self.skip_space()
        start = self.pos
        if start < len(self.text) and self.text[start] in QUOTES:
            raw, offset = self.quoted(), start + 1
        else:
            end = start
            while end < len(self.text) and self.text[end] not in NOT_IN_NAMES:
                end += 1
            raw, offset, self.pos = self.text[start:end], start, end
        for index, char in enumerate(raw):
            # PostgreSQL text cannot hold NUL, and no label holds control characters.
            if unicodedata.category(char) in ("Cc", "Cs") and not char.isspace():
                raise QueryError(
                    f"unexpected character U+{ord(char):04X} at position {offset + index}",
                    offset + index,
                )
        name = normalize_name(raw)
        if not name:
            raise self.error(expected, start)
        return name

    def quoted(self) -> str:
        """A quoted name; the quote character written twice stands for itself."""
        quote, start = self.text[self.pos], self.pos
        pieces, pos = [], start + 1
        while True:
            end = self.text.find(quote, pos)
            if end < 0:
                raise QueryError(
                    f"expected a closing {quote} for the name that starts at position {start}",
                    start,
                )
            pieces.append(self.text[pos:end])
            if self.text.startswith(quote, end + 1):
                pieces.append(quote)
                pos = end + 2
                continue
            self.pos = end + 1
            return "".join(pieces)


# --- Labels and SQL ------------------------------------------------------------


@dataclass
class Sql:
    """A piece of SQL with its psycopg2 %s parameters, in order."""

    text: str
    params: list = field(default_factory=list)

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Sql:
        return Sql(other + self.text, self.params)

    @property
    def subqueries(self) -> int:
        """How many SELECTs the text holds (values are parameters, never text)."""
        return self.text.count("SELECT")


def compose(*pieces: str | Sql) -> Sql:
    """Join SQL text and Sql pieces in order, keeping their parameters in order."""
    result = Sql("")
    for piece in pieces:
        result = result + piece
    return result


def thresholds(alias: str, min_probability: float, min_confidence: float) -> Sql:
    """A condition over the pair table (aliased `alias`): past both thresholds.

    A threshold of 0 is left out: both columns are shares, held in [0, 1] by the
    table's constraints, so it passes every pair, and without it a label term is
    answered from the (label, status, image) index alone."""
    parts, params = [], []
    for column, minimum in (("probability", min_probability), ("confidence", min_confidence)):
        if minimum > 0:
            parts.append(f"{alias}.{column} >= %s")
            params.append(minimum)
    return Sql(" AND ".join(parts) or "TRUE", params)


@dataclass(frozen=True)
class LabelQuery:
    """A parsed query whose labels all exist, ready to become SQL."""

    tree: Node
    label_ids: dict[Term, int]
    collection_ids: dict[Collection, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> LabelQuery:
        """Parse `text` and look up its labels (one query) and collections; QueryError when
        either fails."""
        tree = parse(text)
        return cls(tree, resolve(set(terms_of(tree))), resolve_collections(tree))

    def __str__(self) -> str:
        """The query in canonical form: normalised names, minimal parentheses."""
        return str(self.tree)

    @property
    def named_label_ids(self) -> list[int]:
        return sorted(set(self.label_ids.values()))

    @property
    def requested_label_ids(self) -> list[int]:
        """The labels the query asks for: those it names outside any ~ (`dog & ~cat`: dog)."""
        return sorted({self.label_ids[term] for term in _asked_for(self.tree)})

    @property
    def matches_unlabelled(self) -> bool:
        """Whether a picture with none of the labels the query names matches it (`~cat`,
        `dog | ~cat`), in no collection and past every attribute's bound."""
        return _holds_unlabelled(self.tree)

    def condition(
        self,
        *,
        min_probability: float = 0.0,
        min_confidence: float = 0.0,
        passing: Sql | None = None,
    ) -> Sql:
        """A condition over the public images aliased `img` that match this query.

        `passing` is the pair filter, a condition over the pair table aliased `p`
        (exports.export.Export.passing builds it from the pair statuses asked for);
        without it, a pair passes when it is past both thresholds.
        """
        if passing is None:
            passing = thresholds("p", min_probability, min_confidence)
        compiler = _Compiler(self.label_ids, passing, self.collection_ids)
        return Sql("img.status = %s AND ", [Image.Status.PUBLIC]) + compiler.condition(self.tree)

    def image_ids_sql(self, **filters) -> Sql:
        """`SELECT img.id …` for the matching public images (tests and previews use it)."""
        return Sql("SELECT img.id FROM donations_image img WHERE ") + self.condition(**filters)


def resolve(terms: set[Term]) -> dict[Term, int]:
    """The label id each term names, or QueryError naming every unknown one."""
    tops = {term.name for term in terms if not term.part}
    parents = {term.name for term in terms if term.part}
    parts = {term.part for term in terms if term.part}
    rows = (
        Label.objects.alias(lname=Lower("name"), pname=Lower("parent__name"))
        .filter(
            Q(parent__isnull=True, lname__in=tops)
            | Q(parent__parent__isnull=True, pname__in=parents, lname__in=parts)
        )
        .values_list("pk", "name", "parent__name")
    )
    known = {}
    for pk, name, parent in rows:
        name, parent = normalize_name(name), normalize_name(parent or "")
        known[Term(parent, name) if parent else Term(name)] = pk
    unknown = sorted((term for term in terms if term not in known), key=lambda t: t.position)
    if unknown:
        names = ", ".join(dict.fromkeys(str(term) for term in unknown))
        plural = "s" if len(set(unknown)) > 1 else ""
        raise QueryError(f"unknown label{plural}: {names}", unknown[0].position)
    return {term: known[term] for term in terms}


def _collections_in(node: Node) -> Iterator[Collection]:
    if isinstance(node, Collection):
        yield node
    elif isinstance(node, Not):
        yield from _collections_in(node.operand)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from _collections_in(operand)


def resolve_collections(tree: Node) -> dict[Collection, int]:
    """The id of each collection the query names, or QueryError naming the first unknown."""
    found = {}
    for collection in _collections_in(tree):
        if collection in found:
            continue
        row = ImageCollection.objects.named(collection.owner, collection.name)
        if row is None:
            raise QueryError(
                f"unknown collection: {collection.owner}/{collection.name}", collection.position
            )
        found[collection] = row.pk
    return found


def _holds_unlabelled(node: Node) -> bool:
    if isinstance(node, Term | Collection):
        return False
    if isinstance(node, Attribute):
        return True
    if isinstance(node, Not):
        return not _holds_unlabelled(node.operand)
    values = [_holds_unlabelled(operand) for operand in node.operands]
    return all(values) if isinstance(node, And) else any(values)


def _deduplicated(node: Node) -> Node:
    """`node` with repeated operands of each & and | dropped (`a | b | a` is `a | b`)."""
    if isinstance(node, Not):
        return Not(_deduplicated(node.operand))
    if isinstance(node, And | Or):
        operands = tuple(dict.fromkeys(_deduplicated(operand) for operand in node.operands))
        return operands[0] if len(operands) == 1 else type(node)(operands)
    return node


def _label_counts(label_ids: dict[Term, int], tree: Node) -> list[tuple[int, int]]:
    """How many times the query names each label, in the order it first names them."""
    counts: dict[int, int] = {}
    for term in terms_of(tree):
        counts[label_ids[term]] = counts.get(label_ids[term], 0) + 1
    return list(counts.items())


class _Compiler:
    def __init__(
        self, label_ids: dict[Term, int], passing: Sql, collection_ids: dict | None = None
    ):
        self.label_ids = label_ids
        self.passing = passing
        self.collection_ids = collection_ids or {}

    def has_pair(self, label_ids: list[int]) -> Sql:
        if len(label_ids) == 1:
            labels = Sql("p.label_id = %s", [label_ids[0]])
        else:
            labels = Sql("p.label_id = ANY(%s)", [label_ids])
        return compose(
            "EXISTS (SELECT 1 FROM validation_imagelabel p WHERE p.image_id = img.id AND ",
            labels,
            " AND ",
            self.passing,
            ")",
        )

    def condition(self, tree: Node) -> Sql:
        """The SQL condition of `tree`, with a label it names more than once looked up
        once per picture where that writes fewer subqueries.

        `x | ~x` would otherwise run the same subquery twice for every picture without
        an x. Each shared label is expanded on (Shannon): the condition becomes
        CASE WHEN <x> THEN <the query with x true> ELSE <with x false> END, each branch
        simplified with x known (a label a branch no longer needs is not looked up in
        it). When a branch is a constant the CASE is written as AND or OR (so
        `x & (y | ~x)` stays `x AND …`, which PostgreSQL may run as a join). The rest of
        the query is written once per branch, so the expansion is kept only when it
        writes fewer subqueries than the query as written: it never adds lookups, and
        each subquery may become a hash of its own (Export.work_mem_mb). A query that
        holds, or fails, whatever a picture has is not decided here: it still looks its
        first shared label up, once.
        """
        tree = _deduplicated(tree)
        written = self.compile(tree)
        shared = [label for label, count in _label_counts(self.label_ids, tree) if count > 1]
        for many in range(min(len(shared), MAX_SHARED_TERMS), 0, -1):
            compiled = self._expanded(tree, shared[:many], {})
            if not isinstance(compiled, Sql):
                # The query holds (`x | ~x`) or fails (`x & ~x`) whatever a picture has:
                # it is run as written, its label looked up once per picture.
                constant = "TRUE" if compiled else "FALSE"
                return compose(
                    "CASE WHEN ",
                    self.has_pair([shared[0]]),
                    f" THEN {constant} ELSE {constant} END",
                )
            if compiled.subqueries < written.subqueries:
                return compiled
        return written

    def _expanded(self, tree: Node, shared: list[int], known: dict[int, bool]) -> Sql | bool:
        if not shared:
            return self.compile(tree, known)
        label, rest = shared[0], shared[1:]
        test = self.has_pair([label])
        then = self._expanded(tree, rest, {**known, label: True})
        otherwise = self._expanded(tree, rest, {**known, label: False})
        if isinstance(then, bool) and isinstance(otherwise, bool) and then == otherwise:
            return then  # decided whatever this label: it need not be looked up here
        if otherwise is False:
            return test if then is True else compose("(", test, " AND ", then, ")")
        if then is False:
            if otherwise is True:
                return compose("NOT ", test)
            return compose("(NOT ", test, " AND ", otherwise, ")")
        if then is True:
            return compose("(", test, " OR ", otherwise, ")")
        if otherwise is True:
            return compose("(NOT ", test, " OR ", then, ")")
        return compose("CASE WHEN ", test, " THEN ", then, " ELSE ", otherwise, " END")

    def compile(self, node: Node, known: dict[int, bool] | None = None) -> Sql | bool:
        """The SQL of `node`, or True or False when the labels `known` to be there (True)
        or not (False) decide it."""
        known = known or {}
        if isinstance(node, Term):
            label = self.label_ids[node]
            return known[label] if label in known else self.has_pair([label])
        if isinstance(node, Collection):
            return Sql(
                "EXISTS (SELECT 1 FROM donations_imagecollection_images c "
                "WHERE c.image_id = img.id AND c.imagecollection_id = %s)",
                [self.collection_ids[node]],
            )
        if isinstance(node, Attribute):
            return attribute_sql(node)
        if isinstance(node, Not):
            operand = self.compile(node.operand, known)
            return (not operand) if isinstance(operand, bool) else "NOT " + operand
        # A constant operand decides an AND (False) or an OR (True), or drops out.
        decides = isinstance(node, Or)
        if isinstance(node, And):
            operands = [self.compile(operand, known) for operand in node.operands]
            if decides in operands:
                return decides
            pieces = [piece for piece in operands if not isinstance(piece, bool)]
            return self._joined_or_constant(" AND ", pieces, not decides)
        # `a | b | c` over plain labels is one EXISTS with label_id = ANY(…),
        # which keeps long pyimagemonkey-style label lists to a single subquery.
        plain = []
        pieces = []
        for operand in node.operands:
            if isinstance(operand, Term) and self.label_ids[operand] not in known:
                plain.append(self.label_ids[operand])
                continue
            # (attributes compile one by one, with the other operands)
            piece = self.compile(operand, known)
            if piece is True:
                return True
            if piece is not False:
                pieces.append(piece)
        if plain:
            pieces.insert(0, self.has_pair(sorted(set(plain))))
        return self._joined_or_constant(" OR ", pieces, False)

    def _joined_or_constant(self, separator: str, pieces: list[Sql], empty: bool) -> Sql | bool:
        """`pieces` joined by `separator`, or `empty` when no piece is left."""
        return self.joined(separator, pieces) if pieces else empty

    @staticmethod
    def joined(separator: str, pieces: list[Sql]) -> Sql:
        result = Sql("(")
        for index, piece in enumerate(pieces):
            result = result + (separator if index else "") + piece
        return result + ")"


# An accepted outline of one of the picture's pairs, with the revision it was accepted at.
ACCEPTED_OUTLINES = """FROM validation_imagelabel ap
    JOIN annotations_annotation a ON a.pair_id = ap.id AND a.status = 'accepted'
    JOIN annotations_annotationrevision r ON r.annotation_id = a.id AND r.number = a.revision
    WHERE ap.image_id = img.id"""


def attribute_sql(node: Attribute) -> Sql:
    """A condition over `img` for an attribute comparison (the operator is one of OPERATORS)."""
    op = "=" if node.op == "=" else node.op
    if node.subject == "image" and node.name in ("width", "height"):
        return Sql(f"img.{node.name} {op} %s", [node.value])
    if node.name == "num_annotations":
        return Sql(f"(SELECT count(*) {ACCEPTED_OUTLINES}) {op} %s", [node.value])
    # annotation.coverage: some accepted outline covers that share of the picture.
    return Sql(f"EXISTS (SELECT 1 {ACCEPTED_OUTLINES} AND r.coverage {op} %s)", [node.value / 100])
