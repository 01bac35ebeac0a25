"""A hostile crowd, simulated against the real voting code (issue 8).

    python -m bench.crowd --scale quick|full      (make crowd-sim-quick / make crowd-sim)

Simulated voters with known accuracy answer image–label pairs whose truth is
known. Every task comes from `validation.selection.next_task` and every answer
goes through `validation.voting.record_vote`, in process, on the real models
in PostgreSQL: the training phase, gold, trust, settling and alerts are the
site's own. The simulator only decides who arrives when and what they answer.

It runs in databases of its own (`imagemonkey_crowd`, and `imagemonkey_crowd_2`
for a second process; CROWD_DATABASE renames them) on the private cluster, or
on the server of CROWD_DATABASE_URL or DATABASE_URL. It creates and migrates
them, and empties them before each scenario; it refuses any database whose
name lacks a "crowd" part, so it never touches the development database.
Results go to bench/crowd.json and bench/CROWD.md.

Every task served carries a ticket (`validation.tickets.issue`, as the site
puts in each task) and every vote presents it. The attackers of issue 13
(scenarios 7–11) are groups voting from /24s of their own: sleepers who are
right on everything but one label, sleepers and a crowd that recognise gold,
a sybil farm in one /24, and trusted tokens that try to vote on pairs they
were never served (`record_vote` must refuse each such vote: they are counted).

Time is simulated: `django.utils.timezone.now` follows a clock that moves one
vote at a time at the pace of `active_sessions` people answering ten questions
a minute each (plus the bot's share), so the 10-minute alert windows see a
busy site rather than the speed of this loop.

Scales: tiny (the test), quick (a smoke run), medium (tuning, minutes), full
(the reported run) and dense (few pairs, many votes each: enough for the
previous rule, which needs 16 agreeing votes, to settle pairs at all).
A run is filed under its scale in crowd.json, as "after" (the rules in force)
or, with `--as before` on the previous code, as "before".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit, urlunsplit

from bench.common import ensure_database, private_cluster_url
from bench.crowd_scenarios import (
    BOT_PREFIX,
    LABELS,
    SCALE_SCENARIOS,
    SCALES,
    SCENARIOS,
    START,
    VANDALISED_LABEL,
    Scale,
    Scenario,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CROWD_DATABASE = os.environ.get("CROWD_DATABASE", "imagemonkey_crowd")


def crowd_database_url(name: str = CROWD_DATABASE) -> str:
    """The simulator's database: on CROWD_DATABASE_URL's, DATABASE_URL's or the private server."""
    url = os.environ.get("CROWD_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return urlunsplit(urlsplit(url)._replace(path="/" + name))
    return private_cluster_url(name)


def is_crowd_database(name: str) -> bool:
    """The simulator empties tables: only in a database named for it, or a test database."""
    return "crowd" in name.split("_") or name.startswith("test")


def setup_django(name: str = CROWD_DATABASE) -> None:
    url = crowd_database_url(name)
    ensure_database(url, is_crowd_database, "run the crowd simulation", throw_away=True)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagemonkey.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def reset_tables() -> None:
    """Empty everything the simulation writes. Only in its own or a test database."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if not is_crowd_database(name):
        raise RuntimeError(f"refusing to empty tables in database {name!r}")
    tables = ["validation_alert", "validation_vote", "validation_imagelabel"]
    tables += ["validation_voter", "donations_image", "labels_label"]
    with connection.cursor() as cursor:
        if connection.in_atomic_block:  # a test: deferred foreign-key checks must run first
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        if connection.in_atomic_block:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


# --- Simulated time --------------------------------------------------------


class Clock:
    """The simulation's time: starts at a fixed instant, moves one vote at a time."""

    def __init__(self, start: datetime):
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@contextmanager
def simulated_time(clock: Clock):
    """Make `django.utils.timezone.now()` (and every model default using it) read the clock.

    timezone.now() calls `datetime.now(tz=...)` through the module's global
    name, so replacing that one name moves every timestamp the real code writes.
    """

    class SimulatedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock.now if tz is not None else clock.now.replace(tzinfo=None)

    with mock.patch("django.utils.timezone.datetime", SimulatedDatetime):
        yield


# --- Voters ----------------------------------------------------------------


@dataclass
class Session:
    """One simulated visitor: a real Voter row and how they answer."""

    kind: str
    voter: object  # people.models.Voter
    prefix: str
    accuracy: float
    budget: int  # votes this visitor will cast
    cast: int = 0
    refusals: int = 0  # of its served votes, refused by the site
    last_ticket: str | None = None  # the ticket of its last task


def draw_accuracy(kind: str, rng: random.Random) -> float:
    if kind in {"honest", "vandal"}:
        return min(0.98, max(0.75, rng.gauss(0.9, 0.04)))
    if kind == "careless":
        return min(0.7, max(0.5, rng.gauss(0.6, 0.05)))
    if kind in {"sleeper", "gold_sleeper", "wherever"}:
        return min(0.99, max(0.9, rng.gauss(0.95, 0.02)))
    if kind == "sybil":
        return 0.9
    return 0.0


def answer_for(
    session: Session, truth: bool, label: str, rng: random.Random, gold: bool = False
) -> int:
    """What this visitor answers on a pair; `gold` is what the served pair says (is_gold)."""
    from validation.models import Vote

    kind = session.kind
    if kind in ATTACKERS_OF_13:
        return _attacker_answer(session, truth, label, rng, gold)
    if kind in {"always_yes", "bot"}:
        return Vote.Answer.YES
    if kind == "always_no":
        return Vote.Answer.NO
    if kind == "vandal" and label == VANDALISED_LABEL and session.voter.trusted:
        return Vote.Answer.NO if truth else Vote.Answer.YES
    if rng.random() < (0.05 if kind == "careless" else 0.02):
        return Vote.Answer.SKIP
    right = rng.random() < session.accuracy
    return Vote.Answer.YES if truth == right else Vote.Answer.NO


# How a voter who votes where they like presents a vote on a pair never served to them.
UNSERVED_WAYS = ("no ticket", "ticket of another pair", "ticket of another voter")
ATTACKERS_OF_13 = {"sleeper", "gold_sleeper", "sybil", "gold_detector", "wherever"}


def _attacker_answer(
    session: Session, truth: bool, label: str, rng: random.Random, gold: bool
) -> int:
    """Issue 13's attackers: they never skip."""
    from validation.models import Vote
    from validation.voting import counts_for

    kind = session.kind
    right = None
    if kind in {"gold_sleeper", "gold_detector"} and gold:
        right = True  # a perfect gold detector: careful on every gold pair
    elif kind in {"sleeper", "gold_sleeper", "wherever"} and label == VANDALISED_LABEL:
        right = False  # from the first vote on, gold included (unless recognised)
    elif kind == "gold_detector":
        right = False
    elif kind == "sybil":
        session.voter.refresh_from_db()
        if counts_for(session.voter):
            return Vote.Answer.YES
    if right is None:
        right = rng.random() < session.accuracy
    return Vote.Answer.YES if truth == right else Vote.Answer.NO


# --- The data --------------------------------------------------------------


@dataclass
class World:
    truth: dict[int, bool]  # pair id → is the label in the picture
    label_of: dict[int, str]  # pair id → label name
    gold: set[int]
    label_ids: dict[str, int]


def build_world(scale: Scale, rng: random.Random) -> World:
    """Labels, public images (rows only), one pair per image, and the gold seed."""
    from donations.models import Image, ImageLabel
    from labels.models import Label

    names = list(LABELS)[: scale.labels]
    labels = {name: Label.objects.create(name=name) for name in names}
    gold_count = scale.gold_per_label * len(names)
    total = scale.pairs + gold_count
    images = []
    for n in range(total):
        digest = hashlib.sha256(f"crowd-{n}-{rng.random()}".encode()).hexdigest()
        phash = rng.getrandbits(63)
        images.append(
            Image(
                status=Image.Status.PUBLIC,
                width=640,
                height=480,
                format=Image.Format.JPEG,
                bytes_sha256=digest,
                pixels_sha256=hashlib.sha256(digest.encode()).hexdigest(),
                master_sha256=digest,
                phash=phash,
                phash_band0=phash & 0xFFFF,
                phash_band1=(phash >> 16) & 0xFFFF,
                phash_band2=(phash >> 32) & 0xFFFF,
                phash_band3=(phash >> 48) & 0xFFFF,
                original_filename="crowd-sim.jpg",
            )
        )
    images = Image.objects.bulk_create(images, batch_size=2000)

    plan: list[tuple[str, bool, bool]] = []  # label, truth, gold
    for name in names:
        for k in range(scale.gold_per_label):
            plan.append((name, k % 2 == 0, True))
    for _ in range(scale.pairs):
        name = rng.choice(names)
        plan.append((name, rng.random() < LABELS[name], False))
    pairs = [
        ImageLabel(
            image=image,
            label=labels[name],
            servable=True,
            random_key=rng.randint(0, 2**31 - 1),
        )
        for image, (name, _, _) in zip(images, plan, strict=True)
    ]
    pairs = ImageLabel.objects.bulk_create(pairs, batch_size=2000)
    world = World({}, {}, set(), {name: label.pk for name, label in labels.items()})
    gold_yes, gold_no = [], []
    for pair, (name, truth, is_gold) in zip(pairs, plan, strict=True):
        world.truth[pair.pk] = truth
        world.label_of[pair.pk] = name
        if is_gold:
            world.gold.add(pair.pk)
            (gold_yes if truth else gold_no).append(pair.pk)
    # As a moderator does in the admin ("Make gold: yes/no"): the pairs stay open.
    ImageLabel.objects.filter(pk__in=gold_yes).update(is_gold=True, gold_answer=True)
    ImageLabel.objects.filter(pk__in=gold_no).update(is_gold=True, gold_answer=False)
    return world


# --- One scenario ------------------------------------------------------------


@dataclass
class Trace:
    """What happened, vote by vote, for the metrics."""

    kinds: list[str] = field(default_factory=list)
    pairs: list[int] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    counted_when_cast: list[bool] = field(default_factory=list)
    voter_kind: dict[int, str] = field(default_factory=dict)
    bot_alert_at: int | None = None  # votes cast before the first alert naming the bot
    bot_snapshot: dict | None = None
    times: list[float] = field(default_factory=list)  # simulated seconds since the start
    refused: int = 0  # served votes the site refused
    refused_by: Counter = field(default_factory=Counter)  # "kind status": served votes refused
    starved: int = 0  # visitors who found nothing left to answer
    visitors: int = 0
    voters: list[int] = field(default_factory=list)  # who cast each vote
    served: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    # Votes on pairs never served to the voter (scenario 11): "way" → attempts, refused, taken.
    unserved: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    unserved_statuses: Counter = field(default_factory=Counter)  # refusal status → count
    unserved_clicks: dict[tuple[int, int], int] = field(default_factory=dict)  # (voter, pair)


def run_scenario(scenario: Scenario, scale: Scale, seed: int, progress: bool = True) -> dict:
    from donations.models import ImageLabel
    from labels.models import Label
    from people.models import Voter
    from validation import tickets
    from validation.models import Alert, Vote
    from validation.selection import next_task
    from validation.voting import VoteRefused, record_vote

    rng = random.Random(f"{seed}:{scenario.key}")
    random.seed(f"{seed}:{scenario.key}:site")  # the site's own draws (task windows)
    reset_tables()
    started = time.perf_counter()
    clock = Clock(START)
    trace = Trace()
    with simulated_time(clock):
        world = build_world(scale, rng)
        target = Label.objects.filter(name=VANDALISED_LABEL).first()
        kinds, weights = zip(*scenario.mix.items(), strict=True)
        visitors = 0
        # Attacker groups: their tokens (voter, prefix, accuracy), and whose turn is next.
        crews = {kind: [] for kind in scenario.crews}
        turn = Counter()
        members = dict.fromkeys(scenario.crews, 0)  # voters each group has had
        for kind, crew in scenario.crews.items():
            for n in range(crew.tokens):
                prefix = crew.prefixes[n % len(crew.prefixes)]
                trusted = {"trusted": True, "gold_correct": 10} if crew.trusted else {}
                voter = Voter.objects.create(first_ip_prefix=prefix, **trusted)
                trace.voter_kind[voter.pk] = kind
                crews[kind].append((voter, prefix, draw_accuracy(kind, rng)))

        def crew_voter(kind: str) -> tuple:
            crew = scenario.crews[kind]
            if crew.tokens:  # the next token of the group comes back
                voter, prefix, accuracy = crews[kind][turn[kind] % crew.tokens]
                turn[kind] += 1
                voter.refresh_from_db()
                return voter, prefix, accuracy
            prefix = crew.prefixes[members[kind] % len(crew.prefixes)]
            members[kind] += 1
            voter = Voter.objects.create(first_ip_prefix=prefix)
            trace.voter_kind[voter.pk] = kind
            return voter, prefix, draw_accuracy(kind, rng)

        def draw_budget() -> int:
            return int(min(400, max(3, rng.lognormvariate(math.log(scale.session_median), 0.9))))

        def arrive() -> Session:
            nonlocal visitors
            visitors += 1
            kind = rng.choices(kinds, weights)[0]
            if kind in crews:
                voter, prefix, accuracy = crew_voter(kind)
                return Session(kind, voter, prefix, accuracy, draw_budget())
            # Everyone else: a new voter from a /24 of their own.
            prefix = f"10.{visitors // 250}.{visitors % 250}.0/24"
            voter = Voter.objects.create(first_ip_prefix=prefix)
            trace.voter_kind[voter.pk] = kind
            budget = draw_budget()
            return Session(kind, voter, prefix, draw_accuracy(kind, rng), budget)

        # What a voter who votes where they like aims at: every pair of the label.
        aimed = []
        if "wherever" in crews and target is not None:
            aimed = list(ImageLabel.objects.filter(label=target).values_list("pk", "image__uuid"))

        def vote_unserved(session: Session) -> None:
            """Vote, by picture and label, on pairs of the label this voter was never served."""
            served = trace.served[session.voter.pk]
            others = [v for v, _, _ in crews[session.kind] if v.pk != session.voter.pk]
            for way in UNSERVED_WAYS:
                candidates = [
                    c for c in rng.sample(aimed, min(8, len(aimed))) if c[0] not in served
                ]
                if not candidates:
                    continue
                pk, uuid = candidates[0]
                if way == "no ticket":
                    ticket = None
                elif way == "ticket of another pair":
                    ticket = session.last_ticket  # its own, from the task it just answered
                else:  # as if another token of the group had been served this pair
                    ticket = (
                        tickets.issue(rng.choice(others), ImageLabel(pk=pk)) if others else None
                    )
                wrong = Vote.Answer.NO if world.truth[pk] else Vote.Answer.YES
                tally = trace.unserved[way]
                tally["attempts"] += 1
                trace.unserved_clicks.setdefault((session.voter.pk, pk), int(wrong))
                try:
                    result = record_vote(
                        None,
                        session.voter,
                        wrong,
                        session.prefix,
                        ticket=ticket,
                        image_uuid=uuid,
                        label_id=target.pk,
                    )
                except VoteRefused as refused:
                    tally["refused"] += 1
                    trace.unserved_statuses[str(refused.status)] += 1
                    continue
                tally["taken"] += 1
                tally["counted_when_cast"] += bool(result.vote.counted)

        def bot_session() -> Session:
            voter = Voter.objects.create(first_ip_prefix=BOT_PREFIX)
            trace.voter_kind[voter.pk] = "bot"
            return Session("bot", voter, BOT_PREFIX, 0.0, scenario.bot_rotate_every)

        active = [arrive() for _ in range(scale.active_sessions)]
        # The people set the pace; the bot adds its share on top of theirs.
        site_rate = scale.active_sessions * scale.human_votes_per_minute
        seconds_per_vote = 60 / site_rate * (1 - scenario.bot_share)
        bot = bot_session() if scenario.bot_share else None
        report_every = max(1, scale.votes // 10)
        cast = 0
        while cast < scale.votes:
            use_bot = bot is not None and rng.random() < scenario.bot_share
            slot = None if use_bot else rng.randrange(len(active))
            session = bot if use_bot else active[slot]
            pair = None
            if session.kind == "vandal" and session.voter.trusted:
                pair = next_task(session.voter, target)
            pair = pair or next_task(session.voter)
            if pair is None:
                trace.starved += 1
                if not ImageLabel.objects.filter(servable=True, is_gold=False).exists():
                    break  # every pair has settled
                if trace.starved > scale.votes:
                    break  # nothing left for anyone
                if use_bot:
                    bot = bot_session()
                else:
                    active[slot] = arrive()
                continue
            # The ticket the site puts in every task it serves; the vote presents it.
            ticket = tickets.issue(session.voter, pair)
            trace.served[session.voter.pk].add(pair.pk)
            answer = answer_for(
                session, world.truth[pair.pk], world.label_of[pair.pk], rng, gold=pair.is_gold
            )
            clock.advance(seconds_per_vote * rng.uniform(0.5, 1.5))
            try:
                result = record_vote(pair, session.voter, answer, session.prefix, ticket=ticket)
            except VoteRefused as refused:
                # The site refused a served vote (a rule of its own): counted, and a
                # visitor refused again and again gives up.
                trace.refused += 1
                trace.refused_by[f"{session.kind} {refused.status}"] += 1
                session.refusals += 1
                if trace.refused > 10 * scale.votes:
                    break
                if session.refusals >= 5:
                    if use_bot:
                        bot = bot_session()
                    else:
                        active[slot] = arrive()
                continue
            session.last_ticket = ticket
            cast += 1
            session.cast += 1
            trace.voters.append(session.voter.pk)
            trace.kinds.append(session.kind)
            trace.pairs.append(pair.pk)
            trace.answers.append(int(answer))
            trace.counted_when_cast.append(bool(result.vote.counted))
            trace.times.append((clock.now - START).total_seconds())
            bot_named = use_bot and trace.bot_alert_at is None
            if bot_named and Alert.objects.filter(ip_prefix=BOT_PREFIX).exists():
                trace.bot_alert_at = cast
                trace.bot_snapshot = snapshot(world, trace)
            if session.kind == "wherever" and aimed:
                vote_unserved(session)
            if session.cast >= session.budget:
                if use_bot:
                    bot = bot_session()
                else:
                    active[slot] = arrive()
            if progress and cast % report_every == 0:
                print(
                    f"    {scenario.key}: {cast:>6} votes, {time.perf_counter() - started:5.1f} s",
                    flush=True,
                )
        trace.visitors = visitors
        from bench.crowd_report import scenario_metrics

        metrics = scenario_metrics(scenario, world, trace)
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return metrics


def snapshot(world: World, trace: Trace) -> dict:
    """At the moment the bot is first named by an alert: what has settled wrongly so far."""
    from bench.crowd_report import wrong_settles

    return wrong_settles(world, trace)


def scenarios_for(scale: Scale, only: list[str] | None = None) -> list[Scenario]:
    """The scenarios asked for, else those of this scale (all but at the tiny scale)."""
    keys = only or SCALE_SCENARIOS.get(scale.name)
    return [s for s in SCENARIOS if not keys or s.key in keys]


def run(scale: Scale, seed: int = 8, only: list[str] | None = None, progress=True) -> dict:
    """Every scenario at this scale, one after the other, in the current database."""
    scenarios = scenarios_for(scale, only)
    results = []
    for scenario in scenarios:
        if progress:
            print(f"==> scenario {scenario.key}: {scenario.title}", flush=True)
        results.append(run_scenario(scenario, scale, seed, progress))
    return {"scale": asdict(scale), "seed": seed, "rules": rules_in_force(), "scenarios": results}


def _worker_start(databases) -> None:
    setup_django(databases.get())


def _worker_run(key: str, scale_name: str, seed: int) -> dict:
    scenario = next(s for s in SCENARIOS if s.key == key)
    print(f"==> scenario {scenario.key}: {scenario.title}", flush=True)
    return run_scenario(scenario, SCALES[scale_name], seed)


def run_in_parallel(scale: Scale, seed: int, only: list[str] | None, jobs: int) -> dict:
    """The scenarios spread over `jobs` processes, each with a database of its own."""
    scenarios = scenarios_for(scale, only)
    context = multiprocessing.get_context("spawn")
    databases = context.Queue()
    for n in range(jobs):
        databases.put(CROWD_DATABASE if n == 0 else f"{CROWD_DATABASE}_{n + 1}")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_worker_start, initargs=(databases,)
    ) as pool:
        futures = [pool.submit(_worker_run, s.key, scale.name, seed) for s in scenarios]
        results = [future.result() for future in futures]
    return {"scale": asdict(scale), "seed": seed, "rules": rules_in_force(), "scenarios": results}


def rules_in_force() -> dict:
    """The settings the real code ran with, so the report says which rules it measured."""
    from django.conf import settings

    names = [
        "VALIDATION_THRESHOLD",
        "VALIDATION_POSTERIOR",
        "TRAINING_GOLD_REQUIRED",
        "TRAINING_MIN_ACCURACY",
        "GOLD_EVERY",
        "GOLD_MIN_POOL",
        "GOLD_PROMOTE_MIN_VOTES",
        "GOLD_PROMOTE_MIN_NETWORKS",
        "SETTLE_MIN_VOTERS",
        "SETTLE_MIN_NETWORKS",
        "TASK_TICKET_SECONDS",
        "VOTER_ACCURACY_PRIOR",
        "VOTER_ACCURACY_MAX",
        "VOTER_LABEL_PRIOR",
        "GOLD_PROBATION",
        "ALERT_BURST_VOTES",
        "ALERT_SWING",
        "ALERT_WINDOW_MINUTES",
    ]
    return {name: getattr(settings, name) for name in names if hasattr(settings, name)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--only", nargs="*", help="scenario keys to run (default: all)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes, each with a database of its own (default: 2)",
    )
    parser.add_argument(
        "--as",
        dest="section",
        choices=["after", "before"],
        default="after",
        help="file the run as the rules in force (after, the default) or as the measurement "
        "of the previous rules (before), kept beside later runs of the same scenarios",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "crowd.json")
    args = parser.parse_args(argv)

    setup_django()
    scale = SCALES[args.scale]
    began = time.perf_counter()
    if args.jobs > 1:
        result = run_in_parallel(scale, args.seed, args.only, args.jobs)
    else:
        result = run(scale, args.seed, args.only)
    from bench.crowd_report import render, scenario_fingerprint

    result.update(
        {
            "seconds": round(time.perf_counter() - began, 1),
            "jobs": args.jobs,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "fingerprint": scenario_fingerprint(
                scale, args.seed, [s["key"] for s in result["scenarios"]]
            ),
        }
    )
    # One entry per scale, so that a quick run never replaces the full one.
    document = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = document.setdefault(scale.name, {})
    runs[args.section] = result
    before, after = runs.get("before"), runs.get("after")
    # A 'before' run is kept while its scenarios are still defined as they were when
    # it ran (later scenarios, run after it only, are reported without a 'before').
    if before and after:
        keys = [s["key"] for s in before["scenarios"]]
        if before["fingerprint"] != scenario_fingerprint(scale, before["seed"], keys):
            print("note: the stored 'before' run measured other scenarios: dropped", flush=True)
            del runs["before"]
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    markdown = args.out.with_name("CROWD.md")
    if any("after" in runs for runs in document.values()):
        markdown.write_text(render(document))
    print(f"==> {args.out} and {markdown} written; {result['seconds']} s in all", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
