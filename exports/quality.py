"""The quality report of a release or an export: what the crowd settled per label, and how
often it was right.

Only what can be counted honestly:

- **settled pairs** per label: the release's own pairs, validated or rejected;
- **estimated precision of validated pairs** (and of rejected ones: the share that
  really lack the label), from the label's *gold* pairs — pairs whose answer is
  known — that the crowd settled: of those it validated, the share whose known
  answer is yes; of those it rejected, the share whose known answer is no. Every
  gold pair of the label on a public picture counts, not only those in the release,
  with a 95 % Wilson interval. Gold made from a moderator's or a curator's answer is
  independent evidence; gold promoted from unanimous votes agrees with its outcome by
  construction, and the two are not told apart in the data, so the estimate leans
  optimistic where promoted gold is common;
- **accuracy of counted votes on gold** per label: how often a vote that counts was
  right on a pair whose answer is known — the raw material of `confidence`;
- **voters per pair** per label: how many distinct voters, and distinct networks
  (/24 or /48), cast the counted votes on each of the release's pairs (0 to "5+");
- **calibration**: the gold pairs of the release's labels grouped by their stored
  confidence (tenths), with the share whose known answer is yes — where confidence
  is honest, each row's share lies near its range.

- **the blind re-vote sample** per label: settled pairs drawn at random when they first
  settled (validation.models.RevoteSample) are asked again of trusted voters as ordinary
  tasks; of the answers given since by voters trusted now, the share that agrees with the
  outcome (yes for validated, no for rejected), with a 95 % Wilson interval over answers.
  Independent of gold, and of how gold was made; the answers of one pair are not
  independent of each other, so the interval is a little narrow where pairs get several.
"""

from __future__ import annotations

import json
import math

from donations.models import Image, PairStatus
from validation.models import VoteAnswer

from .query import Sql, compose

# Every query below reads the pairs being measured from `chosen` (image_id, label_id,
# status): a release's frozen rows, or an export's passing pairs in its snapshot.
SETTLED_SQL = """
SELECT label_id,
       count(*) FILTER (WHERE status = %s),
       count(*) FILTER (WHERE status = %s),
       count(*) FILTER (WHERE status = %s)
FROM chosen GROUP BY label_id
"""
LABELS_SQL = """
SELECT c.label_id, COALESCE(parent.name, l.name),
       CASE WHEN parent.id IS NULL THEN '' ELSE l.name END, count(*)
FROM chosen c JOIN labels_label l ON l.id = c.label_id
LEFT JOIN labels_label parent ON parent.id = l.parent_id
GROUP BY 1, 2, 3 ORDER BY 2, 3
"""
GOLD_SQL = """
SELECT p.label_id,
       count(*) FILTER (WHERE p.status = %s),
       count(*) FILTER (WHERE p.status = %s AND p.gold_answer),
       count(*) FILTER (WHERE p.status = %s),
       count(*) FILTER (WHERE p.status = %s AND NOT p.gold_answer)
FROM validation_imagelabel p JOIN donations_image img ON img.id = p.image_id
WHERE p.is_gold AND img.status = %s AND p.label_id IN (SELECT label_id FROM chosen)
GROUP BY p.label_id
"""
GOLD_VOTES_SQL = """
SELECT p.label_id, count(*), count(*) FILTER (WHERE (v.answer = %s) = p.gold_answer)
FROM validation_vote v
JOIN validation_imagelabel p ON p.id = v.pair_id
JOIN donations_image img ON img.id = p.image_id
WHERE p.is_gold AND img.status = %s AND v.counted AND NOT v.quarantined AND v.answer <> %s
  AND p.label_id IN (SELECT label_id FROM chosen)
GROUP BY p.label_id
"""
VOTERS_SQL = """
SELECT label_id, LEAST(voters, 5), LEAST(networks, 5), count(*)
FROM (
    SELECT e.label_id,
           count(DISTINCT v.voter_id) AS voters,
           count(DISTINCT NULLIF(v.ip_prefix, '')) AS networks
    FROM chosen e
    JOIN validation_imagelabel p ON p.image_id = e.image_id AND p.label_id = e.label_id
    LEFT JOIN validation_vote v
        ON v.pair_id = p.id AND v.counted AND NOT v.quarantined AND v.answer <> %s
    GROUP BY e.label_id, p.id
) AS per_pair
GROUP BY 1, 2, 3
"""
# The blind re-vote sample (validation.models.RevoteSample): per label, the votes cast on
# its sampled pairs since they were drawn, by voters who are trusted (and not banned) now,
# skips and quarantined votes left out, against the outcome each pair had when drawn.
REVOTE_SQL = """
SELECT p.label_id,
       count(*) FILTER (WHERE s.settled_as = %s),
       count(*) FILTER (WHERE s.settled_as = %s AND v.answer = %s),
       count(*) FILTER (WHERE s.settled_as = %s),
       count(*) FILTER (WHERE s.settled_as = %s AND v.answer = %s)
FROM validation_revotesample s
JOIN validation_imagelabel p ON p.id = s.pair_id
JOIN donations_image img ON img.id = p.image_id
JOIN validation_vote v ON v.pair_id = p.id AND v.created >= s.created
JOIN validation_voter voter ON voter.id = v.voter_id
WHERE img.status = %s AND v.answer <> %s AND NOT v.quarantined
  AND voter.trusted AND NOT voter.banned
  AND p.label_id IN (SELECT label_id FROM chosen)
GROUP BY p.label_id
"""
CALIBRATION_SQL = """
SELECT LEAST(floor(p.confidence * 10)::int, 9), count(*), count(*) FILTER (WHERE p.gold_answer)
FROM validation_imagelabel p JOIN donations_image img ON img.id = p.image_id
WHERE p.is_gold AND img.status = %s AND p.label_id IN (SELECT label_id FROM chosen)
GROUP BY 1 ORDER BY 1
"""
BUCKETS = ["0", "1", "2", "3", "4", "5+"]
METHOD = (
    "settled: the release's pairs validated or rejected by the crowd. precision: of the "
    "label's gold pairs (known answer) on public pictures that the crowd settled, the share "
    "whose known answer agrees (yes for validated, no for rejected), with a 95 % Wilson "
    "interval; gold promoted from unanimous votes agrees by construction and is not told "
    "apart, so the estimate leans optimistic. vote accuracy: counted votes on the label's "
    "gold pairs that match the known answer. voters per pair: distinct voters and networks "
    "behind the counted votes of each pair of the release. calibration: the gold pairs of "
    "the release's labels by stored confidence, with the share whose known answer is yes "
    "(promoted gold again leans it). re-vote: settled pairs drawn at random when they "
    "settled (REVOTE_SAMPLE_RATE) and asked again, blind, of trusted voters as ordinary "
    "tasks; the share of their answers since (skips left out) that agree with the settled "
    "outcome, with a 95 % Wilson interval over the answers, an estimate independent of gold."
)


def wilson(right: int, total: int, z: float = 1.96) -> list[float] | None:
    """The 95 % Wilson score interval of a proportion, or None without observations."""
    if total == 0:
        return None
    share = right / total
    centre = share + z * z / (2 * total)
    spread = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    scale = 1 + z * z / total
    return [
        round(max(0.0, (centre - spread) / scale), 4),
        round(min(1.0, (centre + spread) / scale), 4),
    ]


def _revote_estimate(right: int, total: int) -> dict:
    return {
        "revotes": total,
        "agreeing": right,
        "precision": round(right / total, 4) if total else None,
        "interval_95": wilson(right, total),
    }


def _estimate(right: int, total: int) -> dict:
    return {
        "gold_pairs": total,
        "agreeing": right,
        "precision": round(right / total, 4) if total else None,
        "interval_95": wilson(right, total),
    }


def release_outlines(release_id: int) -> Sql:
    """The outlines a release's report counts: every frozen one, (label_id, shapes)."""
    return Sql(
        "SELECT e.label_id, cardinality(o.export_coco) FROM exports_releaseoutline o "
        "JOIN exports_releaseentry e ON e.id = o.entry_id WHERE e.release_id = %s",
        [release_id],
    )


def release_pairs(release_id: int) -> Sql:
    """The pairs a release's report measures: every frozen row with a label."""
    return Sql(
        "SELECT image_id, label_id, status FROM exports_releaseentry "
        "WHERE release_id = %s AND label_id IS NOT NULL",
        [release_id],
    )


class _Measuring:
    """Runs the report's queries on `cursor`, each over the `chosen` pairs."""

    def __init__(self, cursor, pairs: Sql):
        self.cursor = cursor
        self.pairs = pairs

    def fetch(self, sql: str, params: list) -> list[tuple]:
        query = compose("WITH chosen AS MATERIALIZED (", self.pairs, ") ", Sql(sql, params))
        self.cursor.execute(query.text, query.params)
        return self.cursor.fetchall()

    def by_label(self, sql: str, params: list) -> dict[int, tuple]:
        return {row[0]: row[1:] for row in self.fetch(sql, params)}


def measure(pairs: Sql, cursor, about: dict, outlines: Sql) -> dict:
    """The report of the pairs `pairs` selects (image_id, label_id, status), from them and
    the gold on the cursor's snapshot, with the accepted outlines `outlines` selects
    (label_id, shapes) counted per label. `about` says what was measured: {"release": slug}
    or {"query": text}, and "snapshot", the time of the snapshot (ISO 8601)."""
    run = _Measuring(cursor, pairs)
    counted = compose(
        "SELECT label_id, count(*), COALESCE(sum(shapes), 0) FROM (",
        outlines,
        ") AS outlines(label_id, shapes) GROUP BY label_id",
    )
    cursor.execute(counted.text, counted.params)
    outlined = {label_id: (count, shapes) for label_id, count, shapes in cursor.fetchall()}
    statuses = [PairStatus.VALIDATED, PairStatus.REJECTED, PairStatus.OPEN]
    settled = run.by_label(SETTLED_SQL, statuses)
    gold = run.by_label(
        GOLD_SQL, [PairStatus.VALIDATED] * 2 + [PairStatus.REJECTED] * 2 + [Image.Status.PUBLIC]
    )
    votes = run.by_label(GOLD_VOTES_SQL, [VoteAnswer.YES, Image.Status.PUBLIC, VoteAnswer.SKIP])
    revotes = run.by_label(
        REVOTE_SQL,
        [PairStatus.VALIDATED] * 2
        + [VoteAnswer.YES]
        + [PairStatus.REJECTED] * 2
        + [VoteAnswer.NO, Image.Status.PUBLIC, VoteAnswer.SKIP],
    )
    empty = {"voters": dict.fromkeys(BUCKETS, 0), "networks": dict.fromkeys(BUCKETS, 0)}
    voters: dict[int, dict] = {}
    for label_id, by_voters, by_networks, count in run.fetch(VOTERS_SQL, [VoteAnswer.SKIP]):
        found = voters.setdefault(
            label_id, {"voters": dict.fromkeys(BUCKETS, 0), "networks": dict.fromkeys(BUCKETS, 0)}
        )
        found["voters"][BUCKETS[by_voters]] += count
        found["networks"][BUCKETS[by_networks]] += count
    calibration = [
        {
            "confidence": [tenth / 10, (tenth + 1) / 10],
            "gold_pairs": total,
            "answer_yes": yes,
            "share_yes": round(yes / total, 4),
        }
        for tenth, total, yes in run.fetch(CALIBRATION_SQL, [Image.Status.PUBLIC])
    ]
    labels = []
    for label_id, label, sublabel, count in run.fetch(LABELS_SQL, []):
        validated, rejected, still_open = settled.get(label_id, (0, 0, 0))
        gold_validated, validated_right, gold_rejected, rejected_right = gold.get(
            label_id, (0, 0, 0, 0)
        )
        answered, right = votes.get(label_id, (0, 0))
        revoted_yes, yes_again, revoted_no, no_again = revotes.get(label_id, (0, 0, 0, 0))
        labels.append(
            {
                "label": label,
                "sublabel": sublabel,
                "pairs": count,
                "settled": validated + rejected,
                "validated": validated,
                "rejected": rejected,
                "open": still_open,
                "validated_precision": _estimate(validated_right, gold_validated),
                "rejected_precision": _estimate(rejected_right, gold_rejected),
                "validated_revote": _revote_estimate(yes_again, revoted_yes),
                "rejected_revote": _revote_estimate(no_again, revoted_no),
                "gold_votes": {
                    "answered": answered,
                    "right": right,
                    "accuracy": round(right / answered, 4) if answered else None,
                },
                "outlines": outlined.get(label_id, (0, 0))[0],
                "outline_shapes": outlined.get(label_id, (0, 0))[1],
                "pairs_by_voters": voters.get(label_id, empty)["voters"],
                "pairs_by_networks": voters.get(label_id, empty)["networks"],
            }
        )
    return {**about, "method": METHOD, "labels": labels, "calibration": calibration}


def share(estimate: dict) -> str:
    """An estimate in words: "67% (9%–99%; 2 of 3 gold)", "no gold", or for the re-vote
    sample "80% (…; 4 of 5 re-votes)", "no re-votes"."""
    revote = "revotes" in estimate
    if estimate["precision"] is None:
        return "no re-votes" if revote else "no gold"
    low, high = estimate["interval_95"]
    count = estimate["revotes"] if revote else estimate["gold_pairs"]
    return (
        f"{estimate['precision']:.0%} ({low:.0%}–{high:.0%}; "
        f"{estimate['agreeing']} of {count} {'re-votes' if revote else 'gold'})"
    )


def _label_cell(row: dict) -> str:
    """The row's label (a part as dog/eye) as a Markdown table cell."""
    name = f"{row['label']}/{row['sublabel']}" if row["sublabel"] else row["label"]
    return name.replace("|", "\\|")


def as_markdown(report: dict) -> str:
    if "release" in report:
        title = f"# Quality of ImageMonkey release {report['release']}"
        when = f"Measured when the release was cut ({report['snapshot']})."
    else:
        title = f"# Quality of an ImageMonkey export: {report['query']}"
        when = f"Measured on the export's snapshot ({report['snapshot']})."
    lines = [
        title,
        "",
        when,
        "",
        report["method"],
        "",
        "| label | pairs | settled | validated | rejected | precision of validated | "
        "precision of rejected | counted votes on gold right |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for row in report["labels"]:
        name = _label_cell(row)
        votes = row["gold_votes"]
        accuracy = (
            f"{votes['accuracy']:.0%} ({votes['right']} of {votes['answered']})"
            if votes["accuracy"] is not None
            else "no votes on gold"
        )
        lines.append(
            f"| {name} | {row['pairs']} | {row['settled']} | {row['validated']} | "
            f"{row['rejected']} | {share(row['validated_precision'])} | "
            f"{share(row['rejected_precision'])} | {accuracy} |"
        )
    if any("validated_revote" in row for row in report["labels"]):  # reports since re-votes
        lines += [
            "",
            "## Blind re-vote sample",
            "",
            "Settled pairs drawn at random and asked again of trusted voters as ordinary "
            "tasks: the share of their answers that agree with the settled outcome, a "
            "second estimate beside gold's.",
            "",
            "| label | precision of validated, re-voted | precision of rejected, re-voted |",
            "|---|---|---|",
        ]
        for row in report["labels"]:
            lines.append(
                f"| {_label_cell(row)} | {share(row['validated_revote'])} | "
                f"{share(row['rejected_revote'])} |"
            )
    if any("outlines" in row for row in report["labels"]):  # reports since releases froze them
        lines += [
            "",
            "## Accepted outlines",
            "",
            "Outlines the crowd accepted of the label's positive pairs, and their shapes (the "
            "boxes and polygons of the detection formats).",
            "",
            "| label | outlines | shapes |",
            "|---|---:|---:|",
        ]
        for row in report["labels"]:
            lines.append(f"| {_label_cell(row)} | {row['outlines']} | {row['outline_shapes']} |")
    lines += [
        "",
        "## Independent voters per pair",
        "",
        "Pairs of the release by the number of distinct voters (and networks) behind their "
        "counted votes.",
        "",
        "| label | "
        + " | ".join(f"{b} voters" for b in BUCKETS)
        + " | "
        + " | ".join(f"{b} networks" for b in BUCKETS)
        + " |",
        "|---|" + "---:|" * (2 * len(BUCKETS)),
    ]
    for row in report["labels"]:
        cells = [str(row["pairs_by_voters"][b]) for b in BUCKETS]
        cells += [str(row["pairs_by_networks"][b]) for b in BUCKETS]
        lines.append(f"| {_label_cell(row)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Calibration of confidence",
        "",
        "Gold pairs of these labels by stored confidence, and how many truly show the label.",
        "",
        "| confidence | gold pairs | known answer yes | share |",
        "|---|---:|---:|---:|",
    ]
    for row in report["calibration"]:
        low, high = row["confidence"]
        lines.append(
            f"| {low:.1f}–{high:.1f} | {row['gold_pairs']} | {row['answer_yes']} | "
            f"{row['share_yes']:.0%} |"
        )
    if not report["calibration"]:
        lines.append("| no gold pairs | | | |")
    return "\n".join(lines) + "\n"


def members(report: dict) -> list[tuple[str, bytes]]:
    """The report's files for an archive: QUALITY.md and quality.json."""
    return [
        ("QUALITY.md", as_markdown(report).encode()),
        ("quality.json", (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode()),
    ]


def of_export(export, snap) -> dict:
    """The report an export's archive carries: a release's as measured when it was cut
    ({} for a release cut without one), any other export's measured on its snapshot."""
    if export.release_id is not None:
        (text,) = snap.one(stored(export.release_id))
        return json.loads(text) or {}
    about = {"query": str(export.query), "snapshot": snap.taken.isoformat()}
    with snap.raw.cursor() as cursor:
        return measure(export.pair_rows(), cursor, about, export.outline_rows())


def stored(release_id: int) -> Sql:
    """The stored report, as JSON text (json.loads it: drivers differ on jsonb)."""
    return Sql("SELECT quality::text FROM exports_release WHERE id = %s", [release_id])
