"""Datasets at scale, written with PostgreSQL COPY into the bench databases.

A dataset of N image–label pairs holds:

- the label vocabulary of wordlists/ (about 300 taggable labels and their parts),
  with a Zipf-like popularity: the most popular label is on about a sixth of
  the pairs, the least popular on a few dozen per million;
- about N / 3.1 images (one to eight labels each, sometimes a part such as
  dog/eye), 96 % public, the rest pending, rejected, quarantined or hidden,
  created over three years, with unique hashes, a perceptual hash and its
  bands, camera sizes; rows only, no files (browse and export read none);
- N / 100 voters (90 % trusted, with gold records) whose activity is Zipf-like;
- votes on a third of the pairs (about one vote per pair overall): open pairs
  with one or two votes, settled ones with three to five; the rest unvoted, as
  on a site whose crowd lags its donors; counts, probability, confidence and status derived from
  those votes with the site's own rules (validation.rules), so a recount
  would change nothing; a few frozen pairs, gold among the settled ones;
  random_key uniform; servable = open, not frozen, on a public image;
- voter 1, the "bench voter": trusted, with about 200 votes at every scale
  (the history whose NOT EXISTS skip selection pays for).

Rows stream from Python generators straight into COPY … FROM STDIN (FREEZE)
(votes go through a temporary file, as they are drawn with the pairs). Indexes and
unique and foreign-key constraints are dropped before and rebuilt after, which
is several times faster than maintaining them row by row. A marker table
(bench_dataset) records what was generated and the highest ids, so a later
run reuses the dataset after removing what benchmarks added (`reset`).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from array import array
from bisect import bisect
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from .common import ROOT, current_database, is_bench_database

GENERATOR_VERSION = 7  # 7: votes carry weight and quarantine, voters consensus; status from rules
NULL = "\\N"  # COPY's text format for NULL
SEED = 7
BENCH_VOTER_ID = 1
BENCH_VOTER_HISTORY = 200
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)

LOADED_TABLES = [
    "labels_label",
    "validation_voter",
    "donations_image",
    "validation_imagelabel",
    "validation_vote",
]
OUTLINE_TABLES = [
    "annotations_agreement",
    "annotations_annotationvote",
    "annotations_annotationrevision",
    "annotations_annotation",
    "annotations_notannotatable",
    "annotations_annotationtask",
]
TRUNCATED_TABLES = LOADED_TABLES + [
    "validation_alert",
    "donations_report",
    "donations_moderationdecision",
    "labels_suggestionuse",
    "labels_labelsuggestion",
    "labels_synonym",
    "labels_label_categories",
    "django_session",
]
IMAGE_STATUSES = [("public", 0.96), ("pending", 0.004), ("rejected", 0.016)]
IMAGE_STATUSES += [("quarantined", 0.01), ("hidden", 0.01)]
SIZES = [(4032, 3024), (3024, 4032), (4000, 3000), (3000, 4000), (4096, 2304), (1920, 1080)]
SIZES += [(1024, 768), (2048, 1536), (1600, 1200), (4096, 3072), (3264, 2448), (2448, 3264)]
PAIRS_PER_IMAGE = [(1, 0.2), (2, 0.25), (3, 0.2), (4, 0.15), (5, 0.1), (6, 0.05), (7, 0.03)]
PAIRS_PER_IMAGE += [(8, 0.02)]
# What becomes of a pair (cumulative shares): open without votes, open with one or
# two, validated or rejected with three to five. About a third of the pairs get votes,
# a little over one vote per pair on average, as on a site whose crowd lags its donors.
OPEN_UNVOTED = 0.66
OPEN_VOTED = 0.78
VALIDATED = 0.94
VOTED_SHARE = 1 - OPEN_UNVOTED
# Labels people tag most come first; the rest follow in a fixed shuffled order.
POPULAR = ["person", "dog", "cat", "car", "tree", "flower", "sky", "building", "street", "bird"]

MARKER_SQL = """
CREATE TABLE IF NOT EXISTS bench_dataset (
    pairs integer NOT NULL,
    seed integer NOT NULL,
    version integer NOT NULL,
    generated timestamptz NOT NULL,
    seconds double precision NOT NULL,
    counts jsonb NOT NULL,
    watermarks jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS bench_touched (
    id bigint PRIMARY KEY,
    num_yes integer, num_no integer, probability double precision,
    confidence double precision, status varchar(10), servable boolean,
    settled_as varchar(10), is_gold boolean, gold_answer boolean, updated timestamptz
);
"""


# --- The marker, reuse and reset ----------------------------------------------------


def marker() -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(MARKER_SQL)
        cursor.execute(
            "SELECT pairs, seed, version, generated, seconds, counts, watermarks FROM bench_dataset"
        )
        row = cursor.fetchone()
    if row is None:
        return None
    keys = ["pairs", "seed", "version", "generated", "seconds", "counts", "watermarks"]
    found = dict(zip(keys, row, strict=True))
    for key in ("counts", "watermarks"):
        if isinstance(found[key], str):
            found[key] = json.loads(found[key])
    return found


def ensure(pairs: int, regenerate: bool = False, seed: int = SEED, quiet: bool = False) -> dict:
    """The dataset of `pairs` pairs in the current database: reused when there, else generated."""
    name = current_database()
    if not is_bench_database(name):
        raise RuntimeError(f"refusing to write a dataset into database {name!r}")
    found = marker()
    if (
        not regenerate
        and found is not None
        and (found["pairs"], found["seed"], found["version"]) == (pairs, seed, GENERATOR_VERSION)
    ):
        reset(found)
        if _count("validation_imagelabel") == found["counts"]["pairs"]:
            _vacuum_where_needed(quiet)
            if not quiet:
                print(
                    f"==> {name}: reusing {pairs:,} pairs (generated {found['generated']:%Y-%m-%d})"
                )
            found["reused"] = True
            return found
    if not quiet:
        print(f"==> {name}: generating {pairs:,} pairs with COPY", flush=True)
    made = generate(pairs, seed)
    if not quiet:
        print(
            f"    {made['counts']['images']:,} images, {made['counts']['pairs']:,} pairs, "
            f"{made['counts']['votes']:,} votes, {made['counts']['voters']:,} voters "
            f"in {made['seconds']:.1f} s",
            flush=True,
        )
    made["reused"] = False
    return made


def _vacuum_where_needed(quiet: bool) -> None:
    """VACUUM (ANALYZE) the loaded tables whose visibility map is mostly unset, as
    autovacuum would have by now on a live database: a migration that rewrites a table
    (or a benchmark's updates) clears it, and then every index-only scan reads the heap
    and the planner prices it so (pg_class.relallvisible)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relpages > 0 "
            "AND relallvisible < 0.9 * relpages",
            [list(LOADED_TABLES)],
        )
        tables = [name for (name,) in cursor.fetchall()]
        for table in tables:
            clock = time.perf_counter()
            cursor.execute(f"VACUUM (ANALYZE) {table}")
            if not quiet:
                print(f"    vacuumed {table} in {time.perf_counter() - clock:.1f} s", flush=True)


def _count(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def remember_pairs(pair_ids: Iterable[int]) -> None:
    """Keep the generated state of pairs a benchmark is about to vote on, for `reset`."""
    from django.db import connection

    ids = list(pair_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO bench_touched
               SELECT id, num_yes, num_no, probability, confidence, status, servable,
                      settled_as, is_gold, gold_answer, updated
               FROM validation_imagelabel WHERE id = ANY(%s)
               ON CONFLICT (id) DO NOTHING""",
            [ids],
        )


def reset(found: dict | None = None) -> None:
    """Remove every row benchmarks added and restore the pairs they voted on."""
    from django.db import connection, transaction

    found = found or marker()
    if found is None:
        return
    marks = found["watermarks"]
    with transaction.atomic(), connection.cursor() as cursor:
        # Outlines and the pairs waiting for them: the generator makes none, and
        # bench/outlining.py makes the tasks again from the validated pairs.
        # TRUNCATE: bench/outline_export.py leaves a million outlines behind.
        cursor.execute(f"TRUNCATE {', '.join(OUTLINE_TABLES)}")
        cursor.execute("DELETE FROM validation_alert")
        cursor.execute("DELETE FROM validation_vote WHERE id > %s", [marks["vote"]])
        cursor.execute("DELETE FROM donations_report")
        cursor.execute("DELETE FROM labels_suggestionuse WHERE image_id > %s", [marks["image"]])
        cursor.execute("DELETE FROM labels_labelsuggestion")
        cursor.execute(
            "DELETE FROM donations_moderationdecision WHERE image_id > %s", [marks["image"]]
        )
        cursor.execute("DELETE FROM validation_imagelabel WHERE id > %s", [marks["pair"]])
        cursor.execute("DELETE FROM donations_image WHERE id > %s", [marks["image"]])
        cursor.execute("DELETE FROM validation_voter WHERE id > %s", [marks["voter"]])
        cursor.execute("DELETE FROM django_session")
        cursor.execute(
            """UPDATE validation_imagelabel p SET
                   num_yes = t.num_yes, num_no = t.num_no, probability = t.probability,
                   confidence = t.confidence, status = t.status, servable = t.servable,
                   settled_as = t.settled_as, is_gold = t.is_gold, gold_answer = t.gold_answer,
                   updated = t.updated
               FROM bench_touched t WHERE t.id = p.id"""
        )
        cursor.execute("DELETE FROM bench_touched")
    _reset_sequences(LOADED_TABLES)


def _reset_sequences(tables: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                f"""SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                  COALESCE(max(id), 1), max(id) IS NOT NULL) FROM {table}"""
            )


# --- Generation -------------------------------------------------------------------------


class _Lines:
    """A file-like object over generated lines, for copy_expert to read from."""

    def __init__(self, lines: Iterator[str]):
        self.lines = lines

    def read(self, size: int = -1) -> bytes:
        pieces, total = [], 0
        for line in self.lines:
            pieces.append(line)
            total += len(line)
            if total >= 256 * 1024:
                break
        return "".join(pieces).encode()

    readline = read


def _copy(cursor, table: str, columns: str, lines: Iterator[str] | object) -> None:
    source = lines if hasattr(lines, "read") else _Lines(lines)
    clock = time.perf_counter()
    # FREEZE: the table was emptied in this transaction, so rows go in frozen, with
    # hint bits and the visibility map set, as VACUUM would leave them.
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN (FREEZE)", source, size=256 * 1024)
    _phase(f"COPY {table}", clock)


@contextmanager
def _without_indexes(cursor, tables: list[str]):
    """Drop the secondary indexes and unique / foreign-key constraints of `tables`, then rebuild."""
    cursor.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint
           WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f')
           ORDER BY contype DESC""",  # unique before foreign keys when rebuilding
        [tables],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
        [tables],
    )
    indexes = cursor.fetchall()
    for table, name, _definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    yield
    for name, definition in indexes:
        clock = time.perf_counter()
        cursor.execute(definition)
        _phase(f"index {name}", clock)
    for table, name, definition in constraints:
        clock = time.perf_counter()
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        _phase(f"constraint {name}", clock)


def generate(pairs: int, seed: int = SEED) -> dict:
    """Empty the dataset tables and fill them with a dataset of `pairs` pairs."""
    from django.db import connection, transaction

    started = time.perf_counter()
    world = _World(pairs, seed)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(MARKER_SQL)
        cursor.execute("DELETE FROM bench_dataset")
        cursor.execute("DELETE FROM bench_touched")
        cursor.execute(f"TRUNCATE {', '.join(TRUNCATED_TABLES)} RESTART IDENTITY CASCADE")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        # Check the labels' own foreign key at once: pending checks would forbid
        # dropping the constraints of the tables that refer to labels.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        raw = cursor.cursor
        _copy(
            raw,
            "labels_label",
            "id, name, slug, description, plural, is_meta, active, created, parent_id",
            world.label_lines(),
        )
        with _without_indexes(cursor, LOADED_TABLES[1:]):
            _copy(
                raw,
                "validation_voter",
                "id, token_sha256, created, first_ip_prefix, trusted, gold_correct, "
                "gold_wrong, banned, user_id, gold_by_label, consensus_by_label",
                world.voter_lines(),
            )
            _copy(
                raw,
                "donations_image",
                "id, uuid, status, width, height, format, bytes_sha256, pixels_sha256, phash, "
                "phash_band0, phash_band1, phash_band2, phash_band3, master_sha256, "
                "original_filename, created, decided_at, donor_id, similar_to_id",
                world.image_lines(),
            )
            with tempfile.TemporaryFile("w+", prefix="bench-votes-") as votes:
                _copy(
                    raw,
                    "validation_imagelabel",
                    "id, num_yes, num_no, probability, confidence, status, frozen, is_gold, "
                    "gold_answer, random_key, created, updated, image_id, label_id, "
                    "added_by_id, servable, settle_after, settled_as",
                    world.pair_lines(votes),
                )
                votes.seek(0)
                _copy(
                    raw,
                    "validation_vote",
                    "id, answer, counted, weight, quarantined, ip_prefix, created, updated, pair_id, voter_id",
                    votes,
                )
        counts = {
            "labels": world.label_count,
            "taggable_labels": len(world.taggable),
            "voters": world.voter_count,
            "images": world.image_count,
            "public_images": world.public_images,
            "pairs": world.pair_count,
            "servable_pairs": world.servable,
            "votes": world.vote_count,
            "bench_voter_votes": world.bench_voter_votes,
        }
        watermarks = {
            "label": world.label_count,
            "voter": world.voter_count,
            "image": world.image_count,
            "pair": world.pair_count,
            "vote": world.vote_count,
        }
        seconds = time.perf_counter() - started
        cursor.execute(
            "INSERT INTO bench_dataset VALUES (%s, %s, %s, now(), %s, %s, %s)",
            [pairs, seed, GENERATOR_VERSION, seconds, json.dumps(counts), json.dumps(watermarks)],
        )
    _reset_sequences(LOADED_TABLES)
    # Set hint bits and the visibility map, and give the planner its statistics,
    # as a database that has lived a while would have them.
    with connection.cursor() as cursor:
        for table in LOADED_TABLES:
            clock = time.perf_counter()
            cursor.execute(f"VACUUM (ANALYZE) {table}")  # cheap after FREEZE
            _phase(f"vacuum {table}", clock)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_dataset SET seconds = %s", [seconds])
    found = marker()
    assert found is not None
    return found


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


class _World:
    """Draws the dataset; each table is a generator of COPY text lines."""

    def __init__(self, pairs: int, seed: int):
        self.target = pairs
        self.seed = seed
        rng = random.Random(seed)
        # How many pairs each image gets, until the target is reached exactly.
        counts, total = array("b"), 0
        values = [k for k, _ in PAIRS_PER_IMAGE]
        cumulative = _cumulative([w for _, w in PAIRS_PER_IMAGE])
        while total < pairs:
            k = min(rng.choices(values, cum_weights=cumulative)[0], pairs - total)
            counts.append(k)
            total += k
        self.per_image = counts
        self.image_count = len(counts)
        self.pair_count = total
        self.voter_count = max(50, pairs // 100)
        self._labels()

    # --- labels ---------------------------------------------------------------------
    def _labels(self) -> None:
        from django.utils.text import slugify

        from labels.wordlist import parse_wordlists

        entries = parse_wordlists(ROOT / "wordlists" / "en")
        rows, parts, slugs = [], {}, set()
        next_id = 1
        created = _ts(START - timedelta(days=30))

        def add(name: str, parent: int | None, parent_name: str, entry) -> int:
            nonlocal next_id
            full = f"{parent_name} {name}" if parent else name
            slug = base = slugify(full) or "label"
            n = 2
            while slug in slugs:
                slug, n = f"{base}-{n}", n + 1
            slugs.add(slug)
            description = entry.description if entry is not None else ""
            plural = entry.plural if entry is not None else ""
            is_meta = entry.is_meta if entry is not None else False
            rows.append(
                "\t".join(
                    [
                        str(next_id),
                        _text(name),
                        slug,
                        _text(description),
                        _text(plural),
                        "t" if is_meta else "f",
                        "t",
                        created,
                        str(parent) if parent else "\\N",
                    ]
                )
                + "\n"
            )
            next_id += 1
            return next_id - 1

        tops: dict[str, int] = {}
        for entry in entries:
            tops[entry.name] = add(entry.name, None, "", entry)
        for entry in entries:
            if entry.is_meta:
                continue
            parts[tops[entry.name]] = [
                add(part, tops[entry.name], entry.name, None) for part in entry.sublabels
            ]
        self._label_rows = rows
        self.label_count = next_id - 1
        taggable = [e.name for e in entries if not e.is_meta]
        order = [name for name in POPULAR if name in taggable]
        rest = sorted(set(taggable) - set(order))
        random.Random(self.seed + 1).shuffle(rest)
        order += rest
        self.taggable = [tops[name] for name in order]
        self.parts = parts
        # Zipf-like popularity (s = 1): the k-th label is on ~1/k as many pictures as the first.
        self.label_cumulative = _cumulative([1 / (rank + 1) for rank in range(len(self.taggable))])

    def label_lines(self) -> Iterator[str]:
        yield from self._label_rows

    # --- voters -----------------------------------------------------------------------
    def voter_lines(self) -> Iterator[str]:
        from validation.rules import vote_weight_for

        rng = random.Random(self.seed + 2)
        self.voter_trusted = array("b", [0]) * (self.voter_count + 1)
        self.voter_weight = array("d", [0.0]) * (self.voter_count + 1)
        for voter in range(1, self.voter_count + 1):
            trusted = voter == BENCH_VOTER_ID or rng.random() < 0.9
            correct = rng.randint(3, 40) if trusted else rng.randint(0, 2)
            wrong = rng.randint(0, max(0, correct // 4)) if trusted else rng.randint(0, 1)
            self.voter_trusted[voter] = 1 if trusted else 0
            self.voter_weight[voter] = vote_weight_for(correct, wrong, None)
            created = _ts(START + timedelta(days=rng.uniform(0, SPAN.days)))
            prefix = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.0/24"
            yield (
                f"{voter}\t\\N\t{created}\t{prefix}\t{'t' if trusted else 'f'}\t{correct}\t"
                f"{wrong}\tf\t\\N\t{{}}\t{{}}\n"
            )
        # Zipf-like activity (s = 0.8) among the crowd; the bench voter is drawn apart.
        self.crowd = list(range(2, self.voter_count + 1))
        self.crowd_cumulative = _cumulative(
            [1 / (rank + 1) ** 0.8 for rank in range(len(self.crowd))]
        )

    # --- images ---------------------------------------------------------------------------
    def image_lines(self) -> Iterator[str]:
        rng = random.Random(self.seed + 3)
        random_, getrandbits, randbytes = rng.random, rng.getrandbits, rng.randbytes
        n = self.image_count
        self.image_public = array("b", [0]) * (n + 1)
        self.image_hour = array("l", [0]) * (n + 1)
        self.image_created: list[str] = [""] * (n + 1)
        self.image_donor = array("l", [0]) * (n + 1)
        step = SPAN.total_seconds() / n
        days = [_ts(START + timedelta(days=d))[:10] for d in range(SPAN.days + 2)]
        statuses = [s for s, _ in IMAGE_STATUSES]
        status_cumulative = _cumulative([w for _, w in IMAGE_STATUSES])
        status_total = status_cumulative[-1]
        self.public_images = 0
        for image in range(1, n + 1):
            status = statuses[bisect(status_cumulative, random_() * status_total)]
            seconds = int((image - 1) * step + random_() * step)
            day, rest = divmod(seconds, 86400)
            hour, rest = divmod(rest, 3600)
            created = f"{days[day]} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}+00"
            width, height = SIZES[int(random_() * len(SIZES))]
            image_format = "png" if random_() < 0.03 else "jpeg"
            phash = getrandbits(64)
            signed = phash - (1 << 64) if phash >= 1 << 63 else phash
            donor = 2 + int(random_() * (self.voter_count - 1)) if random_() < 0.2 else 0
            public = status == "public"
            self.public_images += public
            self.image_public[image] = public
            self.image_hour[image] = seconds // 3600
            self.image_created[image] = created
            self.image_donor[image] = donor
            hashes = randbytes(96).hex()  # bytes, pixels and master sha256
            u = randbytes(16).hex()
            yield (
                f"{image}\t{u[:8]}-{u[8:12]}-4{u[13:16]}-a{u[17:20]}-{u[20:]}\t{status}\t"
                f"{width}\t{height}\t{image_format}\t{hashes[:64]}\t{hashes[64:128]}\t{signed}\t"
                f"{phash & 0xFFFF}\t{(phash >> 16) & 0xFFFF}\t{(phash >> 32) & 0xFFFF}\t"
                f"{phash >> 48}\t{hashes[128:]}\tIMG_{image % 9973:04d}."
                f"{'png' if image_format == 'png' else 'jpg'}\t{created}\t"
                f"{NULL if status == 'pending' else created}\t{donor or NULL}\t{NULL}\n"
            )

    # --- pairs and their votes ------------------------------------------------------------
    def pair_lines(self, votes_file) -> Iterator[str]:
        from validation import rules

        rng = random.Random(self.seed + 4)
        random_, getrandbits, expovariate = rng.random, rng.getrandbits, rng.expovariate
        hours = int(SPAN.total_seconds() // 3600) + 1
        hour_text = [_ts(START + timedelta(hours=h, minutes=17)) for h in range(hours)]
        taggable, cumulative = self.taggable, self.label_cumulative
        label_total = cumulative[-1]
        crowd, crowd_cumulative = self.crowd, self.crowd_cumulative
        crowd_total = crowd_cumulative[-1]
        trusted, weights = self.voter_trusted, self.voter_weight
        prefixes = [f"10.{v % 251}.{v % 241}.0/24" for v in range(self.voter_count + 1)]
        # A share of pairs gets votes; the bench voter is among the voters of ~200 of them.
        bench_share = min(1.0, BENCH_VOTER_HISTORY / (VOTED_SHARE * self.pair_count))
        pair_id = vote_id = servable = bench_votes = 0
        vote_lines: list[str] = []
        for image in range(1, self.image_count + 1):
            k = self.per_image[image - 1]
            chosen: list[int] = []
            while len(chosen) < k:
                label = taggable[bisect(cumulative, random_() * label_total)]
                if label not in chosen:
                    chosen.append(label)
            if k > 1 and random_() < 0.1 and self.parts.get(chosen[0]):
                parts = self.parts[chosen[0]]
                chosen[-1] = parts[int(random_() * len(parts))]  # e.g. dog/eye
            created = self.image_created[image]
            public = self.image_public[image]
            donor = self.image_donor[image]
            first_hour = self.image_hour[image]
            for label in chosen:
                pair_id += 1
                roll = random_()
                if roll < OPEN_UNVOTED:
                    voters, intended = 0, 0.5
                elif roll < OPEN_VOTED:
                    voters, intended = 1 + (random_() < 0.3), 0.5
                elif roll < VALIDATED:
                    voters, intended = 3 + (random_() < 0.4) + (random_() < 0.2), 0.92
                else:
                    voters, intended = 3 + (random_() < 0.4) + (random_() < 0.2), 0.08
                yes = no = 0
                evidence = 0.0
                weighed = False
                weight = 0.0
                if voters:
                    chosen_voters: list[int] = []
                    if random_() < bench_share:
                        chosen_voters.append(BENCH_VOTER_ID)
                    tries = 0
                    while len(chosen_voters) < voters and tries < 50:
                        tries += 1
                        voter = crowd[bisect(crowd_cumulative, random_() * crowd_total)]
                        if voter != donor and voter not in chosen_voters:
                            chosen_voters.append(voter)
                    for voter in chosen_voters:
                        vote_id += 1
                        # 4 % "can't tell" (2): stored, never counted.
                        answer = 2 if random_() < 0.04 else int(random_() < intended)
                        counted = answer != 2 and trusted[voter] == 1
                        weight = weights[voter] if counted else 0.0
                        if counted:
                            weighed = weighed or weight > 0
                            if answer == 1:
                                yes, evidence = yes + 1, evidence + weight
                            else:
                                no, evidence = no + 1, evidence - weight
                        when = hour_text[min(hours - 1, first_hour + int(expovariate(0.005)))]
                        vote_lines.append(
                            f"{vote_id}\t{answer}\t{'t' if counted else 'f'}\t{weight!r}\tf\t{prefixes[voter]}\t"
                            f"{when}\t{when}\t{pair_id}\t{voter}\n"
                        )
                    bench_votes += chosen_voters[0] == BENCH_VOTER_ID
                outcome = rules.outcome(rules.Tally(yes, no, evidence, weighed))
                status = outcome.status
                settled_as = "" if status == rules.OPEN else status
                frozen = random_() < 0.003
                gold = status != "open" and random_() < 0.03
                is_servable = status == "open" and not frozen and public == 1
                servable += is_servable
                yield (
                    f"{pair_id}\t{yes}\t{no}\t{outcome.probability!r}\t"
                    f"{outcome.confidence!r}\t{status}\t"
                    f"{'t' if frozen else 'f'}\t{'t' if gold else 'f'}\t"
                    f"{('t' if status == 'validated' else 'f') if gold else NULL}\t"
                    f"{getrandbits(31)}\t{created}\t{created}\t{image}\t{label}\t{NULL}\t"
                    f"{'t' if is_servable else 'f'}\t0\t{settled_as}\n"
                )
            if len(vote_lines) >= 4096:
                votes_file.write("".join(vote_lines))
                vote_lines.clear()
        votes_file.write("".join(vote_lines))
        self.vote_count = vote_id
        self.servable = servable
        self.bench_voter_votes = bench_votes


def _phase(what: str, started: float) -> None:
    import os

    if os.environ.get("BENCH_VERBOSE"):
        print(f"    {what}: {time.perf_counter() - started:.2f} s", flush=True)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _text(value: str) -> str:
    """A value for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


# --- What benchmarks pick from the dataset -----------------------------------------------


def bench_voter():
    from people.models import Voter

    return Voter.objects.get(pk=BENCH_VOTER_ID)


def public_open_pairs(count: int, seed: int = 11, exclude: set[int] = frozenset()) -> list[dict]:
    """`count` distinct servable pairs (image uuid, label, sublabel), from random points."""
    from django.db import connection

    rng = random.Random(seed)
    found: dict[int, dict] = {}
    attempts = 0
    with connection.cursor() as cursor:
        while len(found) < count and attempts < 200:
            attempts += 1
            cursor.execute(
                """SELECT p.id, img.uuid, COALESCE(parent.name, l.name),
                          CASE WHEN parent.id IS NULL THEN '' ELSE l.name END
                   FROM validation_imagelabel p
                   JOIN donations_image img ON img.id = p.image_id
                   JOIN labels_label l ON l.id = p.label_id
                   LEFT JOIN labels_label parent ON parent.id = l.parent_id
                   WHERE p.servable AND p.random_key >= %s
                   ORDER BY p.random_key LIMIT %s""",
                [rng.getrandbits(31), max(100, count // 20)],
            )
            for pk, image_uuid, label, sublabel in cursor.fetchall():
                if pk not in exclude:
                    found[pk] = {
                        "pair": pk,
                        "uuid": str(image_uuid),
                        "label": label,
                        "sublabel": sublabel,
                    }
    return list(found.values())[:count]
