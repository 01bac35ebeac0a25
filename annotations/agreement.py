"""Independent outlines of one pair: how well they agree, and what agreement counts for.

The rule, written once here (README "Outlines" says the same):

- Whenever an outline is drawn or edited, its latest revision is compared with the latest
  revision of every other outline of the same pair by another author (the newest
  MAX_COMPARED of them), by shapes.matched_iou: shapes matched one to one, best first,
  unmatched shapes counting 0 — as many of them as MAX_WORK allows, newest first. Every
  comparison is kept (Agreement); /statistics reports them per label.
- Two outlines agree when the matched IoU reaches AGREEMENT_IOU.
- Agreeing *independent* outlines count as evidence for each other: each author is taken
  to have answered yes on the other's outline, an ordinary vote through
  annotations.voting with the author's own trust, weight and network. An outline is
  independent when it was drawn for a task its author was served (GET /v1/annotate's
  ticket came with it), so nobody picks the outline their agreement supports. Being an
  ordinary vote, it adds nothing from a voter in training, is never cast on one's own
  outline or donation, is one vote per voter per revision (checking the outline later
  replaces it), and settles nothing the bar would not settle.
- Disagreement adds no evidence against: a different outline may be of another dog.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, Q

from . import shapes, voting
from .models import Agreement, Annotation, AnnotationRevision, AnnotationVote

MAX_COMPARED = 20
# What comparing may cost in one drawing or edit, in outline points over the pairs of
# shapes compared (about a second of scanlines): IoU is computed in the request, and a
# hundred overlapping 50-point polygons against another such outline would take a
# core for a minute. Outlines beyond it are not compared (nor count as evidence).
MAX_WORK = 24_000


def _points(shape: dict) -> int:
    if shape["type"] == "polygon":
        return len(shape["points"])
    return shapes.ELLIPSE_POINTS if shape["type"] == "ellipse" else 4


def work(a: list[dict], b: list[dict]) -> int:
    """At most what shapes.matched_iou(a, b) costs: every pair of shapes, by their points."""
    return len(b) * sum(map(_points, a)) + len(a) * sum(map(_points, b))


def compare(annotation: Annotation) -> list[Agreement]:
    """Compare the outline's latest revision with the pair's other outlines; cast the
    evidence agreeing independent outlines give each other. Returns the comparisons."""
    annotation = Annotation.objects.select_related("pair__image", "pair__label__parent").get(
        pk=annotation.pk
    )
    others = list(
        Annotation.objects.filter(pair_id=annotation.pair_id)
        .exclude(pk=annotation.pk)
        .exclude(author_id=annotation.author_id)
        .order_by("-created")[:MAX_COMPARED]
    )
    if not others:
        return []
    latest = _latest_shapes([annotation, *others])
    image = annotation.pair.image
    picture = (image.width, image.height)
    made = []
    spent = 0
    for other in others:
        cost = work(latest[annotation.pk], latest[other.pk])
        if spent + cost > MAX_WORK:
            continue
        spent += cost
        score = min(1.0, shapes.matched_iou(latest[annotation.pk], latest[other.pk], picture))
        agreement, _ = Agreement.objects.get_or_create(
            first=annotation,
            first_revision=annotation.revision,
            second=other,
            second_revision=other.revision,
            defaults={"iou": score, "label_id": annotation.pair.label_id},
        )
        made.append(agreement)
        if score >= settings.AGREEMENT_IOU and annotation.independent and other.independent:
            _vouch(annotation, for_=other)
            _vouch(other, for_=annotation)
    return made


def _latest_shapes(annotations: list[Annotation]) -> dict[int, list[dict]]:
    wanted = Q()
    for annotation in annotations:
        wanted |= Q(annotation_id=annotation.pk, number=annotation.revision)
    return dict(AnnotationRevision.objects.filter(wanted).values_list("annotation_id", "shapes"))


def _vouch(annotation: Annotation, for_: Annotation) -> None:
    """The author of `annotation` says yes on `for_`, as an agreeing outline does."""
    author = annotation.author
    if author is None:
        return
    if AnnotationVote.objects.filter(
        annotation_id=for_.pk, revision=for_.revision, voter=author
    ).exists():
        return  # they checked it themselves: their own answer stands
    # Refused on their own picture, a frozen pair, a hidden picture: no evidence then.
    with contextlib.suppress(voting.VoteRefused):
        voting.record_vote(
            for_.uuid, author, voting.Answer.YES, annotation.author_network, as_evidence=True
        )


AGREEMENT_CACHE_KEY = "statistics:outline-agreement"
AGREEMENT_CACHE_SECONDS = 300  # as the rest of /statistics


def by_label(limit: int = 200) -> list[dict]:
    """Per label: comparisons of two people's outlines of one pair, their mean IoU and the
    share that agree, most compared first; kept for a few minutes, as /statistics is."""
    cached = cache.get(AGREEMENT_CACHE_KEY)
    if cached is not None:
        return cached
    rows = (
        Agreement.objects.filter(first__pair__image__status="public")
        .values("label__name", "label__parent__name")
        .annotate(
            comparisons=Count("pk"),
            mean_iou=Avg("iou"),
            agreeing=Count("pk", filter=Q(iou__gte=settings.AGREEMENT_IOU)),
        )
        .order_by("-comparisons", "label__name")[:limit]
    )
    result = []
    for row in rows:
        parent, name = row["label__parent__name"], row["label__name"]
        result.append(
            {
                "label": f"{parent}/{name}" if parent else name,
                "comparisons": row["comparisons"],
                "mean_iou": row["mean_iou"],
                "agreeing": row["agreeing"] / row["comparisons"],
            }
        )
    cache.set(AGREEMENT_CACHE_KEY, result, AGREEMENT_CACHE_SECONDS)
    return result
