"""The crowd simulation's scenarios: labels, kinds of voter, scales and the attacks run.

One module that both the simulator (bench.crowd) and its report (bench.crowd_report)
read, so that neither imports the other's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
class Crew:
    """An attacker group: the networks it votes from, and whether its voters come back.

    Voter i of the group votes from prefixes[i % len(prefixes)]. With `tokens`,
    the group is that many voters (tokens) who return session after session, in
    turn; without, each visit is a new voter. `trusted` tokens start trusted,
    with 10 gold answered right, as if they had passed training long ago.
    """

    prefixes: tuple[str, ...]
    tokens: int = 0
    trusted: bool = False


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    mix: dict[str, float]  # voter kind: share of arriving visitors
    bot_share: float = 0.0  # share of all votes cast by the session-rotating bot
    bot_rotate_every: int = 5  # votes per bot session (a new voter each time)
    crews: dict[str, Crew] = field(default_factory=dict)  # attacker kind: its group
    issue: int = 8  # the issue whose attacks it measures


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
    # Issue 13: votes an attacker cannot game. Each group votes from /24s of its own.
    Scenario(
        "7-sleepers",
        f"16 sleeper tokens (20% of visits), right on everything but “{VANDALISED_LABEL}”",
        {"honest": 0.8, "sleeper": 0.2},
        crews={"sleeper": Crew(tuple(f"198.51.{n}.0/24" for n in range(100, 104)), tokens=16)},
        issue=13,
    ),
    Scenario(
        "8-gold-detecting-sleepers",
        f"16 sleeper tokens (20% of visits) who recognise gold, wrong on “{VANDALISED_LABEL}”",
        {"honest": 0.8, "gold_sleeper": 0.2},
        crews={"gold_sleeper": Crew(tuple(f"198.51.{n}.0/24" for n in range(104, 108)), tokens=16)},
        issue=13,
    ),
    Scenario(
        "9-sybil-farm",
        "A farm of 64 tokens in one /24 (30% of visits): honest until trusted, then always yes",
        {"honest": 0.7, "sybil": 0.3},
        crews={"sybil": Crew(("192.0.2.0/24",), tokens=64)},
        issue=13,
    ),
    Scenario(
        "10-gold-detector",
        "10% of visitors recognise gold: right on gold, wrong on everything else",
        {"honest": 0.9, "gold_detector": 0.1},
        crews={"gold_detector": Crew(tuple(f"198.18.{n}.0/24" for n in range(4)))},
        issue=13,
    ),
    Scenario(
        "11-vote-where-you-like",
        f"8 trusted tokens (15% of visits) vote on “{VANDALISED_LABEL}” pairs never served to "
        "them, and wrongly on the ones served",
        {"honest": 0.85, "wherever": 0.15},
        crews={"wherever": Crew(("198.51.110.0/24", "198.51.111.0/24"), tokens=8, trusted=True)},
        issue=13,
    ),
]
# Fewer scenarios at the tiny scale (the test), so that it stays fast: the six of
# issue 8 and the one attack that only the ticket stops.
SCALE_SCENARIOS = {
    "tiny": (
        "1-honest",
        "2-careless",
        "3-always-yes",
        "4-vandals",
        "5-rotating-bot",
        "6-mixed",
        "11-vote-where-you-like",
    ),
}

# What each kind of voter does. Honest and careless voters sometimes skip.
KINDS = {
    "honest": "answers correctly with an accuracy drawn around 0.9 (sd 0.04, 0.75–0.98)",
    "careless": "answers correctly with an accuracy drawn around 0.6 (sd 0.05, 0.5–0.7)",
    "always_yes": "answers yes to everything",
    "always_no": "answers no to everything",
    "vandal": "one of a coordinated group: answers honestly (0.9) until trusted, then asks "
    f"for “{VANDALISED_LABEL}” tasks only (the label filter) and answers the opposite of the truth",
    "bot": "always yes; a new session (voter) every few votes, all from one /24",
    "sleeper": "one of 16 tokens that come back session after session: answers correctly "
    f"(accuracy around 0.95) except on “{VANDALISED_LABEL}”, where it answers the opposite "
    "of the truth from the first vote on, gold included; takes whatever it is served",
    "gold_sleeper": "a sleeper that recognises gold (it knows what the site knows: whether "
    "the pair it was served is gold): right on every gold pair, the opposite of the truth "
    f"on the other “{VANDALISED_LABEL}” pairs, around 0.95 elsewhere",
    "sybil": "one of 64 tokens of a farm in a single /24: answers correctly (0.9) while not "
    "trusted, yes to everything while trusted",
    "gold_detector": "recognises gold: right on every gold pair, the opposite of the truth "
    "on every other pair; a new voter each visit, from a few /24s of its group",
    "wherever": "one of 8 tokens that start trusted (10 gold right): after each task it "
    f"answers it also votes the opposite of the truth on three “{VANDALISED_LABEL}” pairs "
    "never served to it, by picture and label, without a ticket, with the ticket of its "
    "last task and with one issued to another token; on the tasks it is served it answers "
    f"wrongly on “{VANDALISED_LABEL}” and around 0.95 elsewhere",
}

# Which votes of each kind are the attack: all of them, or those on VANDALISED_LABEL.
ADVERSARIAL = {
    "always_yes": "all",
    "always_no": "all",
    "bot": "all",
    "vandal": "label",
    "sleeper": "label",
    "gold_sleeper": "label",
    "sybil": "all",
    "gold_detector": "all",
    "wherever": "label",
}


def is_adversarial(kind: str, on_vandalised_label: bool) -> bool:
    how = ADVERSARIAL.get(kind)
    return how == "all" or (how == "label" and on_vandalised_label)


def kinds_of(scenario: Scenario) -> set[str]:
    """The kinds of voter a scenario has, the bot included."""
    return set(scenario.mix) | ({"bot"} if scenario.bot_share else set())


def attacker_prefixes(scenario: Scenario) -> set[str]:
    """The networks the scenario's attacker groups vote from (the bot's included)."""
    found = {BOT_PREFIX} if scenario.bot_share else set()
    for crew in scenario.crews.values():
        found.update(crew.prefixes)
    return found


def targets_label(scenario: Scenario) -> bool:
    """Whether some attacker in the scenario aims at VANDALISED_LABEL alone."""
    return any(ADVERSARIAL.get(kind) == "label" for kind in scenario.mix)


# Fields added after runs were filed: left out of a scenario's fingerprint while at
# their default, so that runs of the scenarios of before still compare.
_LATER_FIELDS = {"crews": {}, "issue": 8}


def scenario_spec(scenario: Scenario) -> dict:
    spec = asdict(scenario)
    for name, default in _LATER_FIELDS.items():
        if spec.get(name) == default:
            del spec[name]
    return spec


# --- The database ----------------------------------------------------------
