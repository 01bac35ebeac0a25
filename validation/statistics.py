"""Numbers for a voter's own page and the public statistics page."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from donations.models import Image, ImageLabel
from people.models import Voter

from .models import Vote
from .voting import counts_for

VALIDATED, REJECTED, OPEN = (
    ImageLabel.Status.VALIDATED,
    ImageLabel.Status.REJECTED,
    ImageLabel.Status.OPEN,
)

STATISTICS_SECONDS = 300
DAYS = 30


def _agrees(field: str, yes_value, no_value) -> Q:
    """Votes that say what `field` says: yes where it is `yes_value`, no where `no_value`."""
    return (Q(answer=Vote.Answer.YES) & Q(**{field: yes_value})) | (
        Q(answer=Vote.Answer.NO) & Q(**{field: no_value})
    )


def votes_of(voter: Voter):
    """A voter's votes; none for a visitor without a voter row (who has cast none)."""
    return Vote.objects.filter(voter=voter) if voter.exists else Vote.objects.none()


def crowd_feedback(pair: ImageLabel) -> str:
    """One line, shown after an answer, on what the counted answers on this pair say.

    Built from the pair's public counts only (the picture's page shows them too), the same
    way for gold and ordinary pairs, so it tells nobody which answer was a check.
    """
    yes, no = pair.num_yes, pair.num_no
    total = yes + no
    if total == 0:
        return "Nobody's answer on this picture counts yet."
    if yes * 3 >= total * 2:
        return f"Most people said Yes ({yes} of {total})."
    if no * 3 >= total * 2:
        return f"Most people said No ({no} of {total})."
    return f"Opinions are split so far ({yes} yes, {no} no)."


def voter_numbers(voter: Voter) -> dict:
    """A voter's own numbers; all zero for a visitor who has not written anything yet."""
    votes = votes_of(voter).filter(undone=False)
    answered = votes.exclude(answer=Vote.Answer.SKIP)
    # Gold pairs are settled too; leaving them out keeps these live numbers from telling
    # which answer was a check.
    settled = answered.filter(pair__status__in=[VALIDATED, REJECTED], pair__is_gold=False)
    agreement = settled.aggregate(
        total=Count("pk"),
        agree=Count("pk", filter=_agrees("pair__status", VALIDATED, REJECTED)),
    )
    checked = checked_answers(voter)
    return {
        "votes": answered.count(),
        "skipped": votes.filter(answer=Vote.Answer.SKIP).count(),
        "gold_answered": checked["answered"],
        "gold_correct": checked["right"],
        "trusted": counts_for(voter),
        "banned": voter.banned,
        "settled_votes": agreement["total"],
        "agreement": (agreement["agree"] / agreement["total"]) if agreement["total"] else None,
        "donations": Image.objects.donated_by(voter).count(),
    }


def checked_answers(voter: Voter) -> dict:
    """How many of a voter's answers were checked against known answers, and how many were
    right — coarse and late, so that no single answer's fate can be read from it.

    Only answers older than GOLD_REPORT_DELAY_HOURS count, rounded down to tens
    (GOLD_REPORT_STEP); "right" is rounded down the same way. A voter cannot tell
    which task was a check from watching these numbers move.
    """
    since = timezone.now() - timedelta(hours=settings.GOLD_REPORT_DELAY_HOURS)
    answers = (
        votes_of(voter)
        .filter(pair__is_gold=True, created__lt=since)
        .exclude(answer=Vote.Answer.SKIP)
    )
    numbers = answers.aggregate(
        answered=Count("pk"),
        right=Count("pk", filter=_agrees("pair__gold_answer", True, False)),
    )
    step = settings.GOLD_REPORT_STEP
    return {name: value // step * step for name, value in numbers.items()}


def public_numbers(voter: Voter) -> dict:
    """What a public profile may say of a voter: how many answers they gave, and how many
    settled pairs they helped settle (counted answers that agreed with the outcome) —
    never which answer on what. The second number moves a day late and in tens, so that
    watching it never tells how they answered a pair that has just settled."""
    votes = votes_of(voter).exclude(answer=Vote.Answer.SKIP)
    since = timezone.now() - timedelta(hours=settings.GOLD_REPORT_DELAY_HOURS)
    helped = (
        votes.filter(counted=True, pair__status__in=[VALIDATED, REJECTED], pair__updated__lt=since)
        .filter(_agrees("pair__status", VALIDATED, REJECTED))
        .count()
    )
    step = settings.GOLD_REPORT_STEP
    return {"votes": votes.count(), "settled_helped": helped // step * step}


def activity_chart(days: list, votes: dict, donations: dict) -> dict:
    """Bars for an SVG chart: one pair of bars a day, scaled to the busiest day."""
    width, height, pad = 720, 200, 30
    peak = max([*votes.values(), *donations.values(), 1])
    step = (width - pad) / len(days)
    bars = []
    for index, day in enumerate(days):
        for offset, (series, count) in enumerate(
            (("votes", votes.get(day, 0)), ("donations", donations.get(day, 0)))
        ):
            bar_height = (height - pad) * count / peak
            bars.append(
                {
                    "x": round(pad + index * step + offset * step / 2, 1),
                    "y": round(height - pad - bar_height, 1),
                    "width": round(step / 2 - 1, 1),
                    "height": round(bar_height, 1),
                    "series": series,
                    "title": f"{day:%d %b}: {count} {series}",
                }
            )
    ticks = [
        {"x": round(pad + i * step, 1), "text": f"{day:%d %b}"}
        for i, day in enumerate(days)
        if i % 5 == 0
    ]
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "peak": peak,
        "ticks": ticks,
        "baseline": height - pad,
    }


def site_statistics() -> dict:
    """Totals, per-label numbers and 30 days of activity, cached for a few minutes."""
    cached = cache.get("statistics:site")
    if cached is not None:
        return cached
    public_pairs = ImageLabel.objects.public()
    totals = public_pairs.aggregate(
        pairs=Count("pk"),
        validated=Count("pk", filter=Q(status=VALIDATED)),
        rejected=Count("pk", filter=Q(status=REJECTED)),
        open=Count("pk", filter=Q(status=OPEN)),
    )
    totals["images"] = Image.objects.public().count()
    totals["unlabeled"] = Image.objects.public().filter(pairs__isnull=True).count()
    totals["votes"] = Vote.objects.exclude(answer=Vote.Answer.SKIP).count()
    totals["voters"] = Voter.objects.filter(votes__isnull=False).distinct().count()
    per_label = list(
        public_pairs.values("label__name", "label__parent__name")
        .annotate(
            images=Count("image", distinct=True),
            validated=Count("pk", filter=Q(status=VALIDATED)),
            rejected=Count("pk", filter=Q(status=REJECTED)),
            open=Count("pk", filter=Q(status=OPEN)),
        )
        .order_by("-images", "label__name")[:500]
    )
    for row in per_label:
        parent = row.pop("label__parent__name")
        name = row.pop("label__name")
        row["label"] = f"{parent}/{name}" if parent else name
        settled = row["validated"] + row["rejected"]
        row["error_rate"] = row["rejected"] / settled if settled else None
    today = timezone.now().date()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    since = timezone.now() - timedelta(days=DAYS)
    votes_by_day = dict(
        Vote.objects.filter(created__gte=since)
        .annotate(day=TruncDate("created"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    donations_by_day = dict(
        Image.objects.filter(created__gte=since)
        .annotate(day=TruncDate("created"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    result = {
        # Per day, how many votes and donations: the /v1/activity of the original, counted
        # rather than listed, so nothing tells which pair was voted on when.
        "activity": [
            {
                "date": day.isoformat(),
                "votes": votes_by_day.get(day, 0),
                "donations": donations_by_day.get(day, 0),
            }
            for day in days
        ],
        "totals": totals,
        "per_label": per_label,
        "chart": activity_chart(days, votes_by_day, donations_by_day),
        "generated": timezone.now(),
        "cache_seconds": STATISTICS_SECONDS,
    }
    cache.set("statistics:site", result, STATISTICS_SECONDS)
    return result


def with_usage(labels):
    """Labels annotated with image, vote and gold counts: one subquery each (no N+1, no
    join fan-out), for the curators' list."""

    def count(queryset, group: str):
        return Coalesce(
            Subquery(queryset.order_by().values(group).annotate(n=Count("pk")).values("n")), 0
        )

    pairs = ImageLabel.objects.filter(label=OuterRef("pk"))
    return labels.annotate(
        image_count=count(pairs, "label"),
        vote_count=count(Vote.objects.filter(pair__label=OuterRef("pk")), "pair__label"),
        gold_count=count(pairs.filter(is_gold=True), "label"),
    )
