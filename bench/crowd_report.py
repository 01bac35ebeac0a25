"""Metrics and the Markdown report of the crowd simulation (bench/crowd.py)."""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import Counter, defaultdict

ORIGINAL_THRESHOLD = 0.8  # the original ImageMonkey: yes / (yes + no) >= 0.8, every click
THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.998, 0.999)
YES, NO, SKIP = 1, 0, 2


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _raw_counts(pairs: list[int], answers: list[int]) -> dict[int, list[int]]:
    """Every yes and no ever cast on each pair (the original rule counts them all)."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for pair, answer in zip(pairs, answers, strict=True):
        if answer == YES:
            counts[pair][0] += 1
        elif answer == NO:
            counts[pair][1] += 1
    return counts


def _original_validated(counts: dict[int, list[int]], threshold: float) -> set[int]:
    return {
        pair for pair, (yes, no) in counts.items() if yes + no and yes / (yes + no) >= threshold
    }


def _quality(exported: set[int], truth: dict[int, bool], universe: set[int]) -> dict:
    exported = exported & universe
    true_yes = {pair for pair in universe if truth[pair]}
    hits = len(exported & true_yes)
    return {
        "exported": len(exported),
        "precision": _ratio(hits, len(exported)),
        "recall": _ratio(hits, len(true_yes)),
        "wrong": len(exported) - hits,
    }


def _unserved_clicks(trace) -> tuple[list[int], list[int]]:
    """The pairs and answers of the votes cast on pairs never served to their voter
    (scenario 11), one per voter and pair, less those the voter was served later on.

    The site refuses them; the original site, which served no tickets, took them,
    so the original rule counts them beside the votes the site stored."""
    stored = set(zip(getattr(trace, "voters", []), trace.pairs, strict=False))
    clicks = getattr(trace, "unserved_clicks", {})
    kept = [
        (pair, answer) for (voter, pair), answer in clicks.items() if (voter, pair) not in stored
    ]
    return [pair for pair, _ in kept], [answer for _, answer in kept]


def _unserved(trace) -> dict:
    """What came of the votes on pairs never served (scenario 11), way by way."""
    ways = {way: dict(tally) for way, tally in getattr(trace, "unserved", {}).items()}
    total = Counter()
    for tally in ways.values():
        total.update(tally)
    return {
        "attempts": total["attempts"],
        "refused": total["refused"],
        "taken": total["taken"],
        "taken_counted_when_cast": total["counted_when_cast"],
        "statuses": dict(getattr(trace, "unserved_statuses", {})),
        "by_way": ways,
    }


def _votes_off_what_was_served(trace) -> dict:
    """Stored votes on pairs never served to their voter: by anyone, and attackers' counted."""
    from bench.crowd_scenarios import ADVERSARIAL
    from validation.models import Vote

    served = getattr(trace, "served", {})
    found = Counter()
    rows = Vote.objects.values_list("voter_id", "pair_id", "counted")
    for voter, pair, counted in rows.iterator():
        if pair in served.get(voter, ()):
            continue
        attacker = trace.voter_kind.get(voter) in ADVERSARIAL
        found["votes"] += 1
        found["counted"] += counted
        found["attacker_votes"] += attacker
        found["attacker_votes_counted"] += attacker and counted
    return {
        "votes": found["votes"],
        "counted": found["counted"],
        "attacker_votes": found["attacker_votes"],
        "attacker_votes_counted": found["attacker_votes_counted"],
    }


def scenario_metrics(scenario, world, trace) -> dict:
    from bench.crowd_scenarios import (
        START,
        VANDALISED_LABEL,
        attacker_prefixes,
        is_adversarial,
        targets_label,
    )
    from donations.models import ImageLabel
    from validation.models import Alert, Vote

    universe = set(world.truth) - world.gold  # gold pairs are known, not discovered
    rows = list(
        ImageLabel.objects.filter(pk__in=universe).values_list("pk", "status", "confidence")
    )
    status = {pk: s for pk, s, _ in rows}
    confidence = {pk: c for pk, _, c in rows}
    validated = {pk for pk, s in status.items() if s == "validated"}
    rejected = {pk for pk, s in status.items() if s == "rejected"}
    settled = validated | rejected

    votes_on = Counter(p for p, a in zip(trace.pairs, trace.answers, strict=True) if a != SKIP)
    # The original rule counts every click: the votes stored, and those on pairs never
    # served, which the site refuses and the original site took (none but in scenario 11).
    click_pairs, click_answers = _unserved_clicks(trace)
    raw = _raw_counts(trace.pairs + click_pairs, trace.answers + click_answers)
    clicks_on = votes_on + Counter(
        p for p, a in zip(click_pairs, click_answers, strict=True) if a != SKIP
    )
    original = _original_validated(raw, ORIGINAL_THRESHOLD)
    original_rejected = {
        pair
        for pair, (yes, no) in raw.items()
        if yes + no and yes / (yes + no) <= 1 - ORIGINAL_THRESHOLD
    }
    decided = (original | original_rejected) & universe
    true_no = {pair for pair in universe if not world.truth[pair]}

    ours = _quality(validated, world.truth, universe)
    ours.update(
        {
            "validated": len(validated),
            "rejected": len(rejected),
            "rejected_wrongly": len(rejected - true_no),
            "settled_share": _ratio(len(settled), len(universe)),
            "votes_per_settled_pair": _ratio(sum(votes_on[p] for p in settled), len(settled)),
            "all_votes_per_settled_pair": _ratio(len(trace.pairs), len(settled)),
        }
    )
    theirs = _quality(original, world.truth, universe)
    theirs.update(
        {
            "settled_share": _ratio(len(decided), len(universe)),
            "votes_per_settled_pair": _ratio(sum(clicks_on[p] for p in decided), len(decided)),
            "all_votes_per_settled_pair": _ratio(len(trace.pairs) + len(click_pairs), len(decided)),
            "unserved_votes_taken": len(click_pairs),
        }
    )

    # Who cast what, and which votes carried weight (when cast, and at the end).
    by_kind: dict[str, Counter] = defaultdict(Counter)
    vandal_label = world.label_ids.get(VANDALISED_LABEL)
    rows = Vote.objects.values_list("voter_id", "pair__label_id", "counted")
    for voter, label, counted in rows.iterator():
        kind = trace.voter_kind.get(voter, "?")
        tally = by_kind[kind]
        tally["votes"] += 1
        tally["counted"] += counted
        if is_adversarial(kind, label == vandal_label):
            tally["adversarial"] += 1
            tally["adversarial_counted"] += counted
    for kind, counted in zip(trace.kinds, trace.counted_when_cast, strict=True):
        by_kind[kind]["counted_when_cast"] += counted
    adversarial = sum(t["adversarial"] for t in by_kind.values())
    adversarial_counted = sum(t["adversarial_counted"] for t in by_kind.values())
    weights = _weights_at_the_end(trace, vandal_label)

    alerts = list(
        Alert.objects.order_by("created").values_list("kind", "created", "ip_prefix", "label_id")
    )

    def votes_before(moment) -> int:
        return bisect.bisect_left(trace.times, (moment - START).total_seconds())

    first = alerts[0] if alerts else None
    vandalised = vandal_label if targets_label(scenario) else None
    networks = attacker_prefixes(scenario)
    naming = [a for a in alerts if a[2] in networks or (vandalised and a[3] == vandalised)]
    result = {
        "key": scenario.key,
        "title": scenario.title,
        "mix": scenario.mix,
        "bot_share": scenario.bot_share,
        "votes": len(trace.pairs),
        "visitors": trace.visitors,
        "bot_sessions": sum(1 for k in trace.voter_kind.values() if k == "bot"),
        "pairs": len(universe),
        "true_yes_share": _ratio(len(universe - true_no), len(universe)),
        "ours": ours,
        "original": theirs,
        "by_kind": {kind: dict(tally) for kind, tally in sorted(by_kind.items())},
        "adversarial_votes": adversarial,
        "adversarial_votes_counted": adversarial_counted,
        "mean_weight": weights,
        "adversarial_votes_counted_when_cast": sum(
            c
            for k, c, p in zip(trace.kinds, trace.counted_when_cast, trace.pairs, strict=True)
            if is_adversarial(k, world.label_of[p] == VANDALISED_LABEL)
        ),
        "alerts": dict(Counter(kind for kind, *_ in alerts)),
        "first_alert_after_votes": votes_before(first[1]) if first else None,
        "alerts_naming_adversary": len(naming),
        "first_adversary_alert_after_votes": votes_before(naming[0][1]) if naming else None,
        "thresholds": threshold_table(confidence, raw, world.truth, universe),
        "attacked_label": None,
        "simulated_minutes": round((trace.times[-1] if trace.times else 0) / 60, 1),
        "refused": trace.refused,
        "refused_by": dict(getattr(trace, "refused_by", {})),
        "issue": getattr(scenario, "issue", 8),
        "unserved": _unserved(trace),
        "off_served": _votes_off_what_was_served(trace),
    }
    # The label the attackers of 4, 6, 7, 8 and 11 aim at, in every scenario alike.
    on_label = {p for p in universe if world.label_of[p] == VANDALISED_LABEL}
    result["attacked_label"] = {
        "label": VANDALISED_LABEL,
        "targeted": targets_label(scenario),
        "alerts": sum(1 for a in alerts if a[3] == vandal_label),
        "ours": _quality(validated & on_label, world.truth, on_label),
        "original": _quality(original & on_label, world.truth, on_label),
    }
    if scenario.bot_share:
        result["bot"] = {
            "first_alert_after_votes": trace.bot_alert_at,
            "votes_counted": by_kind["bot"]["counted"],
            "votes_counted_when_cast": by_kind["bot"]["counted_when_cast"],
            "at_first_alert": trace.bot_snapshot,
        }
    return result


def _weights_at_the_end(trace, vandal_label) -> dict | None:
    """The mean weight of counted votes at the end, honest and adversarial, by the live rules.

    A counted vote can weigh next to nothing (a vandal's, on the label where
    they missed the gold). None with rules that do not weigh votes.
    """
    from bench.crowd_scenarios import is_adversarial
    from validation.models import Vote

    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    rows = Vote.objects.filter(counted=True).values_list("voter_id", "pair__label_id", "weight")
    for voter, label, weight in rows.iterator():
        kind = trace.voter_kind.get(voter, "?")
        adversarial = is_adversarial(kind, label == vandal_label)
        group = sums["adversarial" if adversarial else "others"]
        group[0] += weight
        group[1] += 1
    return {name: round(total / n, 3) for name, (total, n) in sums.items() if n}


def threshold_table(confidence, raw, truth, universe) -> list[dict]:
    """Exporting at each threshold: ours on `confidence`, the original on the raw yes share."""
    rows = []
    for t in THRESHOLDS:
        ours = {p for p, c in confidence.items() if c >= t and c > 0}
        theirs = _original_validated(raw, t)
        rows.append(
            {
                "threshold": t,
                "ours": _quality(ours, truth, universe),
                "original": _quality(theirs, truth, universe),
            }
        )
    return rows


def wrong_settles(world, trace) -> dict:
    """Pairs settled against the truth right now, and how many of them a bot vote helped."""
    from donations.models import ImageLabel
    from validation.models import Vote

    universe = set(world.truth) - world.gold
    rows = ImageLabel.objects.filter(
        pk__in=universe, status__in=["validated", "rejected"]
    ).values_list("pk", "status")
    wrong = {pk for pk, s in rows if (s == "validated") != world.truth[pk]}
    bots = [v for v, k in trace.voter_kind.items() if k == "bot"]
    helped = set(
        Vote.objects.filter(voter_id__in=bots, counted=True, pair_id__in=wrong).values_list(
            "pair_id", flat=True
        )
    )
    raw = _raw_counts(trace.pairs, trace.answers)
    original_wrong = {p for p in _original_validated(raw, ORIGINAL_THRESHOLD) if p in universe}
    original_wrong = {p for p in original_wrong if not world.truth[p]}
    return {
        "votes_cast": len(trace.pairs),
        "settled_wrongly": len(wrong),
        "settled_wrongly_with_bot_weight": len(helped),
        "original_validated_wrongly": len(original_wrong),
    }


def scenario_fingerprint(scale, seed: int, keys: list[str] | None = None) -> str:
    """What a run measured: the scale, the seed, and the scenarios (`keys`, else all) with
    the kinds of voter they have. Two runs of the same scenarios share it, whatever else
    is defined beside them."""
    from dataclasses import asdict

    from bench.crowd_scenarios import KINDS, LABELS, SCENARIOS, kinds_of, scenario_spec

    scenarios = [s for s in SCENARIOS if keys is None or s.key in keys]
    used = set().union(*(kinds_of(s) for s in scenarios)) if scenarios else set()
    spec = {
        "scale": asdict(scale),
        "seed": seed,
        "labels": LABELS,
        "kinds": {kind: what for kind, what in KINDS.items() if kind in used},
        "scenarios": [scenario_spec(s) for s in scenarios],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


# --- Markdown ----------------------------------------------------------------


def _f(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _first(value) -> str:
    return "none" if value is None else f"after {value:,} votes"


def _alerts(s: dict) -> str:
    if not s["alerts"]:
        return "none"
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(s["alerts"].items()))
    return f"{kinds}; first {_first(s['first_alert_after_votes'])}"


def _ms_per_vote(run: dict) -> float:
    votes = sum(s["votes"] for s in run["scenarios"]) or 1
    return 1000 * sum(s["seconds"] for s in run["scenarios"]) / votes


def _rules_line(rules: dict) -> str:
    if "VALIDATION_POSTERIOR" in rules:
        right, wrong = rules["VOTER_ACCURACY_PRIOR"]
        return (
            f"weighted votes: validated when P(label present) ≥ {rules['VALIDATION_POSTERIOR']}, "
            f"rejected when ≤ {1 - rules['VALIDATION_POSTERIOR']:.2g}; a vote weighs "
            f"log(a/(1−a)), a = (gold right + {right}) / (gold answered + {right + wrong}), "
            f"at most {rules['VOTER_ACCURACY_MAX']}, and on a label its gold record there counts "
            f"beside {rules.get('VOTER_LABEL_PRIOR', 3)} answers at that rate; training: "
            f"{rules['TRAINING_GOLD_REQUIRED']} gold right, at least {rules['TRAINING_MIN_ACCURACY']} "
            "accurate, a gold yes and a gold no among them; then gold on 1 task in 3 until "
            f"{rules.get('GOLD_PROBATION', 10)} gold answered, 1 in {rules['GOLD_EVERY']} after"
            + (
                f"; a pair settles only once {rules['SETTLE_MIN_VOTERS']} voters from "
                f"{rules['SETTLE_MIN_NETWORKS']} networks (/24) weigh on it"
                if "SETTLE_MIN_NETWORKS" in rules
                else ""
            )
            + (
                "; every vote presents the ticket of its task"
                if "TASK_TICKET_SECONDS" in rules
                else ""
            )
        )
    return (
        f"unweighted counted votes: validated when the Wilson 95 % lower bound of the yes share "
        f"≥ {rules.get('VALIDATION_THRESHOLD')}, rejected when the upper bound ≤ "
        f"{1 - rules.get('VALIDATION_THRESHOLD', 0.8):.2g}"
    )


def _targets(run: dict) -> list[str]:
    lines = ["Issue 8 (a hostile crowd):", ""]
    # The target names scenarios 1–5; 6 is ours, reported beside it.
    named = [s for s in run["scenarios"] if s["key"][:2] in {"1-", "2-", "3-", "4-", "5-"}]
    extra = [s for s in run["scenarios"] if s not in named and s.get("issue", 8) == 8]
    worst = min(
        (s for s in named if s["ours"]["precision"] is not None),
        key=lambda s: s["ours"]["precision"],
        default=None,
    )
    every = all((s["ours"]["precision"] or 0) >= 0.99 for s in named)
    lines.append(
        f"- Precision of validated pairs ≥ 0.99 in every scenario the issue names (1–5): "
        f"**{'met' if every else 'missed'}**"
        + (f" (lowest: {_f(worst['ours']['precision'])} in {worst['key']})." if worst else ".")
    )
    for s in extra:
        ours = s["ours"]
        lines.append(
            f"  Beyond them, {s['key']}: {_f(ours['precision'])} ({ours['wrong']} wrong of "
            f"{ours['exported']:,} validated; with this few validated pairs one pair moves "
            f"precision by {1 / max(ours['exported'], 1):.3f})."
        )
    honest = next((s for s in run["scenarios"] if s["key"].startswith("1-")), None)
    if honest:
        cost = honest["ours"]["votes_per_settled_pair"]
        lines.append(
            f"- Votes per settled pair ≤ 5 in scenario 1: **{'met' if cost and cost <= 5 else 'missed'}** "
            f"({_f(cost, 2)} votes on each settled pair; {_f(honest['ours']['all_votes_per_settled_pair'], 2)} "
            "counting every vote cast, gold, training and pairs still open included)."
        )
    bot = next((s for s in run["scenarios"] if s["key"].startswith("5-")), None)
    if bot and "bot" in bot:
        b = bot["bot"]
        snap = b["at_first_alert"] or {}
        no_weight = b["votes_counted"] == 0 and b["votes_counted_when_cast"] == 0
        helped = snap.get("settled_wrongly_with_bot_weight", 0)
        lines.append(
            f"- Scenario 5, the bot recognised before it settles a pair wrongly: "
            f"**{'met' if no_weight or not helped else 'missed'}**. None of its "
            f"{bot['by_kind'].get('bot', {}).get('votes', 0):,} votes ever carried weight "
            if no_weight
            else f"- Scenario 5: {b['votes_counted']} bot votes carried weight "
        )
        lines[-1] += (
            f"(counted when cast: {b['votes_counted_when_cast']}, at the end: {b['votes_counted']}); "
            f"the first alert naming its /24 came {_first(b['first_alert_after_votes'])}"
            + (
                f", when {snap.get('settled_wrongly', 0)} pairs had settled wrongly, "
                f"{helped} of them with a bot vote carrying weight (the original rule had "
                f"validated {snap.get('original_validated_wrongly', 0)} pairs wrongly by then)."
                if snap
                else "."
            )
        )
    return [*lines, "", "Issue 13 (votes an attacker cannot game):", "", *_targets_13(run)]


def _targets_13(run: dict) -> list[str]:
    scenarios = run["scenarios"]
    lines = []
    overall = [(s["ours"]["precision"], s["key"]) for s in scenarios]
    on_label = [  # runs before issue 13 measured the label only where vandals attacked it
        (s["attacked_label"]["ours"]["precision"], s["key"])
        for s in scenarios
        if s.get("attacked_label")
    ]
    measured = [(p, k) for p, k in overall + on_label if p is not None]
    every = all(p >= 0.99 for p, _ in measured)
    label = next((s["attacked_label"]["label"] for s in scenarios if s.get("attacked_label")), "")
    lowest = min((pk for pk in overall if pk[0] is not None), default=None)
    lowest_label = min((pk for pk in on_label if pk[0] is not None), default=None)
    empty = [k for p, k in on_label if p is None]
    text = (
        f"- Precision of validated pairs ≥ 0.99 in every scenario, on the attacked label "
        f"“{label}” too: **{'met' if every else 'missed'}**"
    )
    if lowest:
        text += f" (lowest overall: {_f(lowest[0])} in {lowest[1]}"
        if lowest_label:
            text += f"; lowest on “{label}”: {_f(lowest_label[0])} in {lowest_label[1]}"
        text += ")"
    if empty:
        text += f"; nothing validated on “{label}” in {', '.join(empty)}"
    lines.append(text + ".")
    tried = [s for s in scenarios if (s.get("unserved") or {}).get("attempts")]
    off = [s.get("off_served") for s in scenarios]
    if all(o is not None for o in off):
        counted = sum(o["attacker_votes_counted"] for o in off)
        stored = sum(o["attacker_votes"] for o in off)
        attempts = sum(s["unserved"]["attempts"] for s in tried)
        refused = sum(s["unserved"]["refused"] for s in tried)
        lines.append(
            f"- No attacker vote counted on a pair the attacker was not served: "
            f"**{'met' if counted == 0 else 'missed'}** ({counted} counted, {stored} stored, "
            f"in all scenarios; of the {attempts:,} votes scenario 11's attackers cast on pairs "
            f"never served to them the site refused {refused:,}"
            + (f", the original rule took all {attempts:,})." if attempts else ").")
        )
    else:
        lines.append(
            "- No attacker vote counted on a pair the attacker was not served: not measured "
            "in this run (it predates the ticket)."
        )
    honest = next((s for s in scenarios if s["key"].startswith("1-")), None)
    if honest:
        recall, cost = honest["ours"]["recall"], honest["ours"]["votes_per_settled_pair"]
        met = recall is not None and recall >= 0.40 and cost is not None and cost <= 3.5
        lines.append(
            f"- An honest crowd (scenario 1) no worse than recall 0.40 and 3.5 votes per "
            f"settled pair: **{'met' if met else 'missed'}** (recall {_f(recall)}, "
            f"{_f(cost, 2)} votes per settled pair)."
        )
    return lines


def _on_label(s: dict, rule: str) -> str:
    quality = (s.get("attacked_label") or {}).get(rule)
    if not quality:
        return "–"
    return f"{_f(quality['precision'])} ({quality['wrong']} wrong of {quality['exported']:,})"


def _refused(s: dict) -> str:
    """Served votes the site refused · votes on pairs never served it refused."""
    u = s.get("unserved") or {}
    unserved = f"{u['refused']:,} of {u['attempts']:,}" if u.get("attempts") else "–"
    return f"{s.get('refused', 0):,} · {unserved}"


def _off_served(s: dict) -> str:
    off = s.get("off_served")
    return "–" if off is None else f"{off['attacker_votes_counted']:,}"


def _scenario_table(run: dict) -> list[str]:
    label = next(
        (s["attacked_label"]["label"] for s in run["scenarios"] if s.get("attacked_label")), "?"
    )
    lines = [
        f"| Scenario | Rule | Precision | Precision on “{label}” | Recall | Settled "
        "| Votes per settled pair | All votes per settled pair | Adversarial votes counted "
        "| Refused: served · unserved | Attacker votes counted on unserved pairs | Alerts |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in run["scenarios"]:
        ours, theirs = s["ours"], s["original"]
        taken = theirs.get("unserved_votes_taken", 0)
        their_refused = f"– · none of {taken:,}" if taken else "–"
        their_off = f"{taken:,} (all)" if taken else "–"
        adversarial = (
            f"{s['adversarial_votes_counted']:,} of {s['adversarial_votes']:,}"
            if s["adversarial_votes"]
            else "–"
        )
        weights = s.get("mean_weight") or {}
        if s["adversarial_votes_counted"] and "adversarial" in weights:
            adversarial += (
                f", mean weight {weights['adversarial']:.2f} (others "
                f"{weights.get('others', 0):.2f})"
            )
        lines.append(
            f"| {s['key']} | ours | **{_f(ours['precision'])}** ({ours['wrong']} wrong of "
            f"{ours['exported']:,}) | {_on_label(s, 'ours')} | {_f(ours['recall'])} "
            f"| {_pct(ours['settled_share'])} "
            f"| {_f(ours['votes_per_settled_pair'], 2)} | {_f(ours['all_votes_per_settled_pair'], 2)} "
            f"| {adversarial} | {_refused(s)} | {_off_served(s)} | {_alerts(s)} |"
        )
        their_adversarial = f"{s['adversarial_votes']:,} (all)" if s["adversarial_votes"] else "–"
        lines.append(
            f"| | original | {_f(theirs['precision'])} ({theirs['wrong']} wrong of "
            f"{theirs['exported']:,}) | {_on_label(s, 'original')} | {_f(theirs['recall'])} "
            f"| {_pct(theirs['settled_share'])} "
            f"| {_f(theirs['votes_per_settled_pair'], 2)} | {_f(theirs['all_votes_per_settled_pair'], 2)} "
            f"| {their_adversarial} | {their_refused} | {their_off} | – |"
        )
    return lines


def _before_after(before: dict, after: dict) -> list[str]:
    lines = [
        "| Scenario | Precision before → after | Recall before → after | Settled before → after "
        "| Votes per settled pair before → after | Adversarial votes counted before → after |",
        "|---|---|---|---|---|---|",
    ]
    old = {s["key"]: s for s in before["scenarios"]}
    for s in after["scenarios"]:
        b = old.get(s["key"])
        if b is None:
            continue
        lines.append(
            f"| {s['key']} | {_f(b['ours']['precision'])} ({b['ours']['exported']:,}) → "
            f"{_f(s['ours']['precision'])} ({s['ours']['exported']:,}) "
            f"| {_f(b['ours']['recall'])} → {_f(s['ours']['recall'])} "
            f"| {_pct(b['ours']['settled_share'])} → {_pct(s['ours']['settled_share'])} "
            f"| {_f(b['ours']['votes_per_settled_pair'], 2)} → {_f(s['ours']['votes_per_settled_pair'], 2)} "
            f"| {b['adversarial_votes_counted']:,} → {s['adversarial_votes_counted']:,} |"
        )
    return lines


def _votes_needed(rules: dict) -> list[str]:
    """Agreeing votes needed to reach each threshold, for a few gold records."""
    import math

    if "VALIDATION_POSTERIOR" not in rules:
        return []
    right, wrong = rules["VOTER_ACCURACY_PRIOR"]
    cap = rules["VOTER_ACCURACY_MAX"]
    records = [(3, 0, "newly trained: 3 gold right"), (10, 1, "10 right, 1 wrong")]
    records.append((20, 0, f"20 right, none wrong (at the cap, a = {cap})"))
    targets = (0.95, 0.99, 0.998, 0.999)
    lines = [
        "| Voters' gold record | a | odds × per vote | "
        + " | ".join(f"to {t}" for t in targets)
        + " |",
        "|---|---|---|" + "---|" * len(targets),
    ]
    for good, bad, name in records:
        a = min((good + right) / (good + bad + right + wrong), cap)
        weight = math.log(a / (1 - a))
        needed = [math.ceil(math.log(t / (1 - t)) / weight - 1e-9) for t in targets]
        lines.append(
            f"| {name} | {a:.3f} | {a / (1 - a):.1f} | " + " | ".join(map(str, needed)) + " |"
        )
    return lines


def _threshold_table(s: dict) -> list[str]:
    lines = [
        f"**{s['key']}** ({s['title']}):",
        "",
        "| Export at ≥ | Ours: pairs | precision | recall | Original: pairs | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in s["thresholds"]:
        o, t = row["ours"], row["original"]
        lines.append(
            f"| {row['threshold']} | {o['exported']:,} | {_f(o['precision'])} | {_f(o['recall'])} "
            f"| {t['exported']:,} | {_f(t['precision'])} | {_f(t['recall'])} |"
        )
    return lines


def render(document: dict) -> str:
    """CROWD.md: the full run if there is one (else the latest), with what came before."""
    from bench.crowd_scenarios import KINDS, LABELS, SCENARIOS, VANDALISED_LABEL

    with_after = [name for name, runs in document.items() if "after" in runs]
    headline = "full" if "full" in with_after else with_after[-1]
    run = document[headline]["after"]
    scale = run["scale"]
    labels = list(LABELS)[: scale["labels"]]
    shares = ", ".join(f"{name} {LABELS[name]:.0%}" for name in labels)
    out = [
        "# Crowd-truth quality: a hostile crowd against the real voting code",
        "",
        f"Generated by `make crowd-sim` (`python -m bench.crowd --scale {scale['name']}`) on "
        f"{run['date']}; {run['machine']}. {len(run['scenarios'])} scenarios in "
        f"{run['seconds']:.0f} s with {run['jobs']} processes; seed {run['seed']}. "
        "The numbers are in `bench/crowd.json`.",
        "",
        "## What runs",
        "",
        "Simulated visitors take their tasks from `validation.selection.next_task` and answer "
        "through `validation.voting.record_vote`, in process, on the real models in PostgreSQL "
        "(a database of its own, `imagemonkey_crowd`): the training phase, gold, trust, "
        "weights, settling and alerts are the site's own code. Only the visitors are simulated, "
        "and the clock: `timezone.now()` follows simulated time so that the 10-minute alert "
        f"windows see a site where people answer {scale['human_votes_per_minute']:g} "
        f"questions a minute each, {scale['active_sessions']} at a time.",
        "",
        f"- **Pairs**: {scale['pairs']:,} image–label pairs with a known truth over "
        f"{len(labels)} labels (true-yes share: {shares}), images as database rows only. "
        "Gold pairs are left out of every metric.",
        f"- **Gold seed**: {scale['gold_per_label']} pairs per label "
        f"({scale['gold_per_label'] * len(labels)} in all), half yes and half no, marked gold "
        "with their true answer the way a moderator does with the admin's “Make gold” "
        "actions (the pair stays open). "
        + (
            "That is above GOLD_MIN_POOL, so no moderator votes are needed (no cold start)."
            if scale["gold_per_label"] * len(labels) >= run["rules"].get("GOLD_MIN_POOL", 0)
            else f"That is below GOLD_MIN_POOL ({run['rules']['GOLD_MIN_POOL']}) at this "
            "scale: no settled pair is promoted to gold."
        ),
        f"- **Visitors** arrive one after another ({scale['active_sessions']} voting at any "
        f"moment, answers interleaved at random); each casts a log-normal number of votes "
        f"(median {scale['session_median']}, 3–400) and leaves; honest and careless "
        "voters answer “can't tell” on 2 % and 5 % of their tasks. Kinds: "
        + "; ".join(f"*{kind}* {what}" for kind, what in KINDS.items())
        + ". Honest, careless, always-yes and always-no voters and vandals each come from a "
        "/24 of their own; the bot and each attacker group of issue 13 from their group's: "
        + "; ".join(
            f"{kind} (scenario {sc.key.split('-')[0]}) {', '.join(crew.prefixes)}"
            for sc in SCENARIOS
            for kind, crew in sc.crews.items()
        )
        + ".",
        "- **Tickets**: every task served carries a ticket (`validation.tickets.issue`, "
        "signed, naming the voter and the pair) and every vote presents it; `record_vote` "
        "refuses a vote without a valid ticket for its voter and pair (403) and stores "
        "nothing. Scenario 11's attackers also vote, by picture and label as the API "
        "names pairs, on pairs of their label never served to them (settled ones "
        "included): without a ticket, with the ticket of the task they just answered, "
        "and with one issued to another token of their group. Attackers who recognise "
        "gold (8, 10) read `is_gold` off the pair they were served: what a perfect gold "
        "detector knows, the worst case. A served vote the site refuses is counted and not "
        "retried; a visitor refused five times leaves.",
        f"- **Budget**: {scale['votes']:,} votes per scenario, gold and training included. "
        f"The real code path took {_ms_per_vote(run):.0f} ms per task and vote in each "
        "process on this shared machine (ten-odd ORM queries), hence the modest budget.",
        "- **The original rule** (the original ImageMonkey) is computed from the same raw "
        f"votes: a pair counts as validated when yes / (yes + no) ≥ {ORIGINAL_THRESHOLD} over "
        "every vote cast on it (training, bots and all), with at least one vote. Its “settled” "
        "share counts pairs at ≥ 0.8 or ≤ 0.2. It rides on our task selection, so it gets the "
        "same votes, not the ones the original site would have collected; in scenario 11 it "
        "also counts the attackers' votes on pairs never served to them (one per attacker "
        "and pair), which the original site, serving no tickets, took.",
        "",
        f"Rules measured: {_rules_line(run['rules'])}.",
        "",
        "## Results: our rules beside the original rule",
        "",
        "*Precision*: of the pairs exported as validated, the share whose label really is in "
        "the picture. *Recall*: of all pairs whose label is in the picture, the share exported "
        "as validated. *Settled*: validated or rejected (pairs stop being served). *Votes per "
        "settled pair*: the votes cast on the pairs that settled, divided by their number; *all "
        "votes per settled pair* divides every vote cast (gold, training, open pairs) instead. "
        "Votes per settled pair favour the easy pairs when a budget runs out (pairs with a "
        "dissent are the ones still open), so they understate the cost of a contested pair. "
        "*Precision on “"
        + VANDALISED_LABEL
        + "”*: the same, on the pairs of the label attacked in 4, 6, 7, 8 and 11 alone "
        "(reported in every scenario). *Refused*: the served votes the site refused, and the "
        "votes on pairs never served to their voter it refused of those tried (scenario 11); "
        "*attacker votes counted on unserved pairs*: stored votes of attackers, counted, on "
        "a pair never served to them. "
        "*Adversarial votes*: the votes of always-yes, always-no, bot, sybil and gold-detector "
        "voters, and the votes of vandals, sleepers and scenario 11's attackers on their "
        "label; *counted* ones are from voters trusted at the end of "
        "the run, and their mean weight (log-odds per vote) says how much they still weigh: "
        "a vandal who missed the gold of their label keeps their trust elsewhere but little "
        "say on that label.",
        "",
        *_scenario_table(run),
        "",
        "## Targets",
        "",
        *_targets(run),
        "",
    ]
    before = document[headline].get("before")
    if before:
        out += [
            "## Before and after the rule change",
            "",
            f"Before: {_rules_line(before['rules'])}; measured {before['date']} on the code "
            "before the change, with the same scenarios (those it has), scale and seed. After: "
            "the rules "
            "above. The previous rule needs at least 16 counted votes, all agreeing, to "
            "validate a pair (the Wilson lower bound of 15 yes out of 15 is 0.796), so with "
            f"{scale['votes'] / scale['pairs']:g} votes per pair it settles nothing at all.",
            "",
            *_before_after(before, run),
            "",
        ]
    out += [
        "How the rules got here: full runs of these scenarios (seed 8, 2026-11-29) on the way "
        "to the rules above. Precision per scenario, and votes per settled pair in scenario 1:",
        "",
        "| Step | Rules | 1 | 2 | 3 | 4 | 5 | 6 | Votes per settled pair (1) |",
        "|---|---|---|---|---|---|---|---|---|",
        "| 1 | weighted votes (prior 2 right in 3, cap 0.95), settle at 0.99; gold at random "
        "moments, yes and no gold in turn, training needs a gold yes and a gold no right "
        "| 1.000 | 0.989 | 0.996 | **0.984** | 0.996 | 0.992 | 3.04 |",
        "| 2 | + weights per label from the gold of that label, recount on a missed gold, "
        "gold on 1 task in 3 until 10 answered, cap 0.9 (no two votes settle) "
        "| 1.000 | 0.995 | 0.995 | 1.000 | 0.995 | **0.987** | 3.09 |",
        "| 3 | + settle at 0.998 | 0.991 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 "
        "| 3.15, but only 6–18 % of pairs settled |",
        "| 4 | settle at 0.995; task selection finishes pairs up to 4 votes (was 3) "
        "| see above | | | | | | |",
        "",
        "Step 1 let the vandals in (their gold record was good on every label but theirs) and "
        "let two strong voters settle a pair alone, both wrong now and then. Step 2 fixed both; "
        "the errors left were pairs where three honest voters were all wrong, which the "
        "model, starting from even odds while two pairs in three are in truth “no”, rated "
        "at 0.992–0.997: about 4 errors in 1,000 validated pairs, so a scenario with 150 "
        "validated pairs misses 0.99 with two unlucky pairs. Step 3 asked a fourth vote of "
        "all but the best-recorded voters, but task selection only served a pair's fourth "
        "vote once every pair had three, so little settled within the budget. Step 4 settles "
        "at 0.995 (a fourth vote for newly trained voters only) and lets selection finish "
        "pairs up to four votes. A rough model of the rule alone (honest voters around 0.9, "
        "gold records of 3–25 answers, 35 % true yes) gives precision 0.9978 at 0.99, "
        "0.9987 at 0.995, 0.9993 at 0.997 and 0.9997 at 0.998, for 3.8, 4.2, 4.6 and 4.9 "
        "counted votes per settled pair.",
        "",
    ]
    dense = document.get("dense", {})
    if headline != "dense" and "before" in dense and "after" in dense:
        d = dense["after"]["scale"]
        out += [
            f"With enough votes for the previous rule ({d['pairs']} pairs, {d['votes']:,} "
            f"votes per scenario, {d['labels']} labels; `--scale dense`, run "
            f"{dense['after']['date']}; a run stops early once every pair has settled):",
            "",
            *_before_after(dense["before"], dense["after"]),
            "",
        ]
    out += [
        "## Choosing a threshold",
        "",
        "`confidence` is the probability that the label is in the picture given the pair's "
        "counted votes, each weighted by its voter's gold record, starting from even odds. "
        "The site settles a pair when it reaches VALIDATION_POSTERIOR "
        f"({run['rules'].get('VALIDATION_POSTERIOR', '–')} here) or "
        "falls to 1 − VALIDATION_POSTERIOR, and stops serving it; an export can ask for any "
        "`min_confidence`. How many agreeing votes a threshold takes, by the voters' gold "
        "records (the same number of no votes rejects):",
        "",
        *_votes_needed(run["rules"]),
        "",
        "Exporting at other thresholds, from the pairs as they stood at the end of the run "
        "(settled or still open; the original rule's columns apply the threshold to its raw "
        "yes share):",
        "",
    ]
    for s in run["scenarios"]:
        if s["key"].startswith(("1-", "6-")):
            out += [*_threshold_table(s), ""]
    out += [
        "What this means for someone choosing:",
        "",
        "- A threshold t says that, if the voters are as accurate as their gold records "
        "suggest, at most a share 1 − t of the pairs exported at it are wrong; the measured "
        "precision is the check on that “if”. Records are smoothed towards 2 right in 3 and "
        "capped, so newly trained voters are trusted less than they probably deserve, which "
        "is why the measured precision beats the threshold.",
        "- Raising VALIDATION_POSTERIOR buys precision with votes: each step in the table "
        "above costs one or two more agreeing votes per pair, and pairs stay longer in the "
        "queue. Lowering it does the reverse: at 0.95 two agreeing votes of newly trained "
        "voters settle a pair, and a careless voter who passed training by luck has more say.",
        "- An export below the settling threshold (0.8, 0.9) adds pairs that are still open; "
        "above it (0.999) only the pairs that overshot it on their last vote remain, so recall "
        "collapses while precision barely moves. Export at the settling threshold, or change "
        "the setting rather than the export filter.",
        "- Recall is bounded by the budget: pairs still open when a run ends are not exported. "
        "The original rule's recall looks higher because a single yes from anyone exports a "
        "pair; that is also why its precision falls apart as soon as bots vote.",
        "",
        "## Per scenario",
        "",
    ]
    for s in run["scenarios"]:
        kinds = ", ".join(
            f"{kind}: {t.get('votes', 0):,} votes, {t.get('counted', 0):,} counted"
            for kind, t in s["by_kind"].items()
        )
        sessions = f" and {s['bot_sessions']:,} bot sessions" if s["bot_sessions"] else ""
        out.append(
            f"- **{s['key']}** — {s['title']}. {s['votes']:,} votes from {s['visitors']:,} "
            f"visitors{sessions} over {s['simulated_minutes']:,} simulated minutes; {kinds}. "
            f"Rejected wrongly (a label that is there): {s['ours']['rejected_wrongly']} of "
            f"{s['ours']['rejected']:,} rejected."
        )
        if s.get("attacked_label") and s["attacked_label"].get("targeted", True):
            a = s["attacked_label"]
            out.append(
                f"  On the attacked label “{a['label']}” alone: ours {_f(a['ours']['precision'])} "
                f"precision ({a['ours']['wrong']} wrong of {a['ours']['exported']}), the original "
                f"rule {_f(a['original']['precision'])} ({a['original']['wrong']} wrong of "
                f"{a['original']['exported']}); alerts on that label: {a['alerts']}."
            )
        u = s.get("unserved") or {}
        if u.get("attempts"):
            ways = "; ".join(
                f"{way}: {t.get('refused', 0):,} of {t.get('attempts', 0):,} refused"
                for way, t in u["by_way"].items()
            )
            statuses = ", ".join(f"{n:,} with {code}" for code, n in sorted(u["statuses"].items()))
            off = s.get("off_served") or {}
            out.append(
                f"  Votes on pairs never served to the voter: {u['attempts']:,} tried, "
                f"{u['refused']:,} refused ({statuses or 'none'}), {u['taken']:,} taken "
                f"({u['taken_counted_when_cast']:,} counted when cast) — {ways}. Attacker "
                f"votes stored on pairs never served to them: {off.get('attacker_votes', 0):,}, "
                f"counted: {off.get('attacker_votes_counted', 0):,}."
            )
        if s.get("refused"):
            by = ", ".join(f"{n:,} {what}" for what, n in sorted(s.get("refused_by", {}).items()))
            out.append(f"  Served votes the site refused: {s['refused']:,} ({by}).")
    out += [
        "",
        "## Limits of this simulation",
        "",
        "- Voters are independent and their accuracy does not depend on the picture; real "
        "pictures are sometimes hard for everyone, which correlates errors and makes every "
        "rule look better here than it is.",
        "- The gold seed is small and every newcomer meets it, so gold pairs collect many "
        "votes; someone patient could spot them by their vote counts in the API and answer "
        "them with care. More gold, and gold promoted from settled pairs, dilutes that. "
        "Scenarios 8 and 10 measure the worst case, a perfect gold detector.",
        "- A settled pair is recomputed when one of its voters gains or loses trust or is "
        "banned, not each time a voter's weight drifts with a new gold answer.",
        "- The bot here answers yes to everything and never keeps a session long enough to "
        "finish training. A bot that keeps one session and answers gold correctly is a "
        "careful voter as far as any rule can tell; rate limits (not simulated here: the "
        "votes do not go through HTTP) and the burst alert are what slow it down.",
        "- Timing is simulated, so alert windows see realistic paces; the alert counts in "
        "honest scenarios are false alarms a moderator would have to look at.",
    ]
    return "\n".join(out) + "\n"
