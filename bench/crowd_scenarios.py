"""The crowd simulation's scenarios: labels, kinds of voter, scales and the attacks run.

One module that both the simulator (bench.crowd) and its report (bench.crowd_report)
read, so that neither imports the other's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

LABELS = {  # name: share of pairs whose true answer is yes
    "dog": 0.45,
    "cat": 0.30,
    "car": 0.40,
    "tree": 0.35,
    "person": 0.50,
    "bicycle": 0.20,
    "bird": 0.25,
    "flower": 0.30,
}
VANDALISED_LABEL = "dog"
BOT_PREFIX = "203.0.113.0/24"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Scale:
    name: str
    pairs: int
    labels: int  # the first n of LABELS
    gold_per_label: int  # half yes, half no, as a moderator would pick them
    votes: int  # the budget: votes cast per scenario, gold and training included
    active_sessions: int  # people voting at the same moment
    session_median: int  # votes per visitor (log-normal, clipped to [3, 400])
    human_votes_per_minute: float = 10  # one answer every six seconds


# The real code path costs about 20–35 ms per vote on the 2-core machine this
# was tuned on (10–12 queries through the ORM), so the budgets are modest.
SCALES = {
    "tiny": Scale("tiny", 60, 4, 2, 150, 4, 30),
    "quick": Scale("quick", 120, 4, 2, 300, 6, 30),
    "medium": Scale("medium", 1_000, 8, 4, 4_000, 12, 30),
    "full": Scale("full", 2_000, 8, 4, 6_000, 12, 30),
    # Enough votes per pair for the previous rule (16 agreeing votes) to settle pairs.
    "dense": Scale("dense", 200, 4, 4, 5_000, 12, 30),
}


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    mix: dict[str, float]  # voter kind: share of arriving visitors
    bot_share: float = 0.0  # share of all votes cast by the session-rotating bot
    bot_rotate_every: int = 5  # votes per bot session (a new voter each time)


SCENARIOS = [
    Scenario("1-honest", "Honest crowd only", {"honest": 1.0}),
    Scenario("2-careless", "20% careless voters", {"honest": 0.8, "careless": 0.2}),
    Scenario("3-always-yes", "20% always-yes bots", {"honest": 0.8, "always_yes": 0.2}),
    Scenario(
        "4-vandals",
        f"10% coordinated vandals on “{VANDALISED_LABEL}”",
        {"honest": 0.9, "vandal": 0.1},
    ),
    Scenario(
        "5-rotating-bot",
        "One session-rotating always-yes bot from one /24, 30% of all votes",
        {"honest": 1.0},
        bot_share=0.3,
    ),
    Scenario(
        "6-mixed",
        "Everything at once: careless, always-yes, always-no, vandals and a 15% bot",
        {
            "honest": 0.6,
            "careless": 0.15,
            "always_yes": 0.1,
            "always_no": 0.05,
            "vandal": 0.1,
        },
        bot_share=0.15,
    ),
]

# What each kind of voter does. Honest and careless voters sometimes skip.
KINDS = {
    "honest": "answers correctly with an accuracy drawn around 0.9 (sd 0.04, 0.75–0.98)",
    "careless": "answers correctly with an accuracy drawn around 0.6 (sd 0.05, 0.5–0.7)",
    "always_yes": "answers yes to everything",
    "always_no": "answers no to everything",
    "vandal": "one of a coordinated group: answers honestly (0.9) until trusted, then asks "
    f"for “{VANDALISED_LABEL}” tasks only (the label filter) and answers the opposite of the truth",
    "bot": "always yes; a new session (voter) every few votes, all from one /24",
}


# --- The database ----------------------------------------------------------
