"""The crowd's rules, as plain functions: what a vote weighs and when a pair settles.

They know nothing of which kind of item is voted on (an image–label pair now,
an outline later) nor of the database: voting.py reads the numbers and calls
these. Every vote path, the crowd simulation and the tests use these and only
these.

One-coin Dawid–Skene: a voter right with probability a multiplies the odds that
the answer is yes by a / (1 − a) with a yes, and divides them by it with a no.
An item's evidence is the sum of log(a / (1 − a)) over its counted votes (+ for
yes, − for no); its posterior is the logistic of that sum (prior 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings

OPEN, VALIDATED, REJECTED = "open", "validated", "rejected"


def voter_accuracy(correct: int, wrong: int) -> float:
    """How often a voter is expected to answer right: their gold record, smoothed and capped.

    (correct + r) / (correct + wrong + r + w), with the pseudo-counts (r, w) of
    VOTER_ACCURACY_PRIOR, at most VOTER_ACCURACY_MAX: no record earns certainty.
    """
    right_prior, wrong_prior = settings.VOTER_ACCURACY_PRIOR
    accuracy = (correct + right_prior) / (correct + wrong + right_prior + wrong_prior)
    return min(accuracy, settings.VOTER_ACCURACY_MAX)


def vote_weight(accuracy: float) -> float:
    """The evidence one vote carries: log(a / (1 − a)), and none at or below chance."""
    if accuracy <= 0.5:
        return 0.0
    return math.log(accuracy / (1 - accuracy))


def vote_weight_for(
    correct: int,
    wrong: int,
    on_label: list[int] | None,
    is_moderator: bool = False,
    consensus: list[int] | None = None,
) -> float:
    """The weight of a vote, from its voter's gold record overall and on the item's label,
    and from how their answers on the label agreed with the settled outcomes.

    The record on the label, [right, wrong], counts beside VOTER_LABEL_PRIOR
    imaginary answers at the overall accuracy: someone careful everywhere but
    wrong on the gold of one label loses their say on that label only. Agreement
    with the crowd's settled outcomes on the label, [agreed, disagreed], counts
    too, each answer as CONSENSUS_EVIDENCE of a gold answer: someone who is right
    on the gold but answers against the settled consensus on a label (a gold
    detector, a sleeper) loses their say there although gold cannot catch them.
    Moderators weigh as much as a vote can.
    """
    if is_moderator:
        return vote_weight(settings.VOTER_ACCURACY_MAX)
    accuracy = voter_accuracy(correct, wrong)
    if on_label or consensus:
        right, missed = on_label or (0, 0)
        agreed, disagreed = consensus or (0, 0)
        share = settings.CONSENSUS_EVIDENCE
        strength = settings.VOTER_LABEL_PRIOR
        accuracy = (right + share * agreed + strength * accuracy) / (
            right + missed + share * (agreed + disagreed) + strength
        )
    return vote_weight(min(accuracy, settings.VOTER_ACCURACY_MAX))


def posterior(evidence: float) -> float:
    """The probability that the answer is yes, from the summed log-odds (prior 0.5)."""
    if evidence >= 0:
        return 1 / (1 + math.exp(-evidence))
    odds = math.exp(evidence)
    return odds / (1 + odds)


def settle_bar() -> float:
    """The evidence at which an item settles: the log-odds of VALIDATION_POSTERIOR."""
    bar = settings.VALIDATION_POSTERIOR
    return math.log(bar / (1 - bar))


@dataclass(frozen=True)
class Tally:
    """What an item's counted votes say (the aggregate voting.py reads)."""

    yes: int
    no: int
    evidence: float  # the sum of the counted votes' signed weights
    weighed: bool  # whether any counted vote carries weight
    voters: int = 0  # distinct voters whose counted votes carry weight
    networks: int = 0  # distinct networks (/24 or /48) those votes came from


def tally(votes: Iterable[tuple[bool, float, str]]) -> Tally:
    """The Tally of a set of counted votes, each (said yes, weight, network), at most one
    per voter: for items whose few votes are read as rows (outlines). validation.voting
    computes the same aggregate in SQL for pairs."""
    yes = no = weighing = 0
    evidence = 0.0
    networks: set[str] = set()
    for said_yes, weight, network in votes:
        if said_yes:
            yes, evidence = yes + 1, evidence + weight
        else:
            no, evidence = no + 1, evidence - weight
        if weight > 0:
            weighing += 1
            if network not in ("", "unknown"):
                networks.add(network)
    return Tally(yes, no, evidence, weighing > 0, voters=weighing, networks=len(networks))


@dataclass(frozen=True)
class Outcome:
    probability: float  # the raw share of yes among counted votes
    confidence: float  # the posterior; 0 until a vote carries weight
    status: str  # OPEN, VALIDATED or REJECTED


def outcome(tally: Tally, settle_after: int = 0) -> Outcome:
    """An item's probability, confidence and status from its tally.

    Validated when the posterior reaches VALIDATION_POSTERIOR, rejected when it
    falls to 1 − VALIDATION_POSTERIOR, open otherwise — and open while nothing
    weighs, while the evidence is not diverse (fewer than SETTLE_MIN_VOTERS
    voters or SETTLE_MIN_NETWORKS networks carry weight: one farm of identities
    in one network cannot settle anything alone), or while a reopened item has
    fewer counted votes than `settle_after`.
    """
    votes = tally.yes + tally.no
    probability = tally.yes / votes if votes else 0.0
    confidence = posterior(tally.evidence) if tally.weighed else 0.0
    bar = settle_bar()
    if not tally.weighed or votes < settle_after or not diverse(tally):
        status = OPEN
    elif tally.evidence >= bar:
        status = VALIDATED
    elif tally.evidence <= -bar:
        status = REJECTED
    else:
        status = OPEN
    return Outcome(probability, confidence, status)


def diverse(tally: Tally) -> bool:
    """Whether the weighing votes come from enough independent voters and networks."""
    return (
        tally.voters >= settings.SETTLE_MIN_VOTERS
        and tally.networks >= settings.SETTLE_MIN_NETWORKS
    )


def promotes_to_gold(tally: Tally, status: str, pool: int | Callable[[], int]) -> bool:
    """Settled by at least GOLD_PROMOTE_MIN_VOTES counted votes, all alike, from at least
    GOLD_PROMOTE_MIN_NETWORKS networks — and never while the gold pool is smaller than
    GOLD_MIN_POOL (`pool`, or a function that counts it, asked last): then only a
    moderator's answer makes gold."""
    return (
        status != OPEN
        and tally.yes + tally.no >= settings.GOLD_PROMOTE_MIN_VOTES
        and (tally.yes == 0 or tally.no == 0)
        and tally.networks >= settings.GOLD_PROMOTE_MIN_NETWORKS
        and (pool() if callable(pool) else pool) >= settings.GOLD_MIN_POOL
    )


def bursts(network_votes: int, label_votes: int) -> bool:
    """Whether one network's recent votes on a label are a burst: at least ALERT_BURST_VOTES,
    and at least ALERT_BURST_SHARE of all recent votes on the label — measured against the
    label's own traffic, so a busy label's honest networks do not raise alerts all day."""
    return (
        network_votes >= settings.ALERT_BURST_VOTES
        and network_votes >= settings.ALERT_BURST_SHARE * label_votes
    )


def swung(probability: float, recent_yes: int, recent: int, tally: Tally) -> float | None:
    """The yes share before the `recent` counted votes, when it moved by more than ALERT_SWING.

    Needs four counted votes and three recent ones, so that one vote never looks
    like a swing. None when nothing swung.
    """
    if tally.yes + tally.no < 4 or recent < 3:
        return None
    base_yes = tally.yes - recent_yes
    base_no = tally.no - (recent - recent_yes)
    if base_yes + base_no <= 0:
        return None
    base = base_yes / (base_yes + base_no)
    return base if abs(probability - base) > settings.ALERT_SWING else None
