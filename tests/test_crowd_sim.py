"""The crowd simulation (bench/crowd.py) at a tiny scale, so that it cannot rot.

It drives the real task selection and vote recording in the test database;
`make crowd-sim` runs the same code at full scale in a database of its own.
"""

import functools

import pytest

from bench import crowd
from bench.crowd_report import render

pytestmark = pytest.mark.django_db


@functools.cache
def tiny_run() -> dict:
    """The tiny scale's scenarios, run once (in the first test's database) for every test."""
    return crowd.run(crowd.SCALES["tiny"], seed=8, progress=False)


def test_every_scenario_runs_through_the_real_code_and_reports_both_rules():
    scale = crowd.SCALES["tiny"]
    result = tiny_run()

    scenarios = {s["key"]: s for s in result["scenarios"]}
    assert list(scenarios) == [s.key for s in crowd.scenarios_for(scale)]
    assert "11-vote-where-you-like" in scenarios, "the tiny scale covers an attack of issue 13"
    for s in scenarios.values():
        assert s["votes"] == scale.votes, "the whole budget is spent"
        assert s["pairs"] == scale.pairs
        for rule in ("ours", "original"):
            for metric in ("precision", "recall", "settled_share"):
                value = s[rule][metric]
                assert value is None or 0 <= value <= 1, (s["key"], rule, metric, value)
        assert len(s["thresholds"]) == len(crowd_thresholds())
        assert sum(t["votes"] for t in s["by_kind"].values()) == s["votes"]

    honest = scenarios["1-honest"]
    assert honest["ours"]["validated"] + honest["ours"]["rejected"] > 0, "pairs settle"
    assert honest["by_kind"]["honest"]["counted"] > 0, "trained voters' votes count"
    assert honest["ours"]["wrong"] == 0
    for s in scenarios.values():
        assert s["off_served"]["votes"] == 0, (s["key"], "every stored vote was served")
        assert s["attacked_label"]["label"] == crowd.VANDALISED_LABEL

    always_yes = scenarios["3-always-yes"]["by_kind"]["always_yes"]
    assert always_yes["votes"] > 0
    assert always_yes["counted"] == always_yes["counted_when_cast"] == 0, (
        "an always-yes voter never passes the yes/no-balanced training gold"
    )
    bot = scenarios["5-rotating-bot"]
    assert bot["by_kind"]["bot"]["votes"] > 0.2 * scale.votes
    assert bot["bot"]["votes_counted"] == bot["bot"]["votes_counted_when_cast"] == 0

    run = {**result, "date": "today", "machine": "here", "seconds": 1.0, "jobs": 1}
    markdown = render({"tiny": {"after": run}})
    assert all(key in markdown for key in scenarios)
    assert "| | original |" in markdown and "## Choosing a threshold" in markdown
    assert "Issue 13" in markdown and "Attacker votes counted on unserved pairs" in markdown


def test_votes_on_pairs_never_served_are_all_refused():
    s = next(s for s in tiny_run()["scenarios"] if s["key"] == "11-vote-where-you-like")
    unserved = s["unserved"]
    assert unserved["attempts"] > 0, "the attackers tried to vote where they like"
    assert set(unserved["by_way"]) == set(crowd.UNSERVED_WAYS), "by every way"
    assert unserved["refused"] == unserved["attempts"] and unserved["taken"] == 0
    assert set(unserved["statuses"]) == {"403"}
    assert s["off_served"]["attacker_votes"] == s["off_served"]["attacker_votes_counted"] == 0
    wherever = s["by_kind"]["wherever"]
    assert wherever["votes"] > 0, "they voted on what they were served"
    assert s["original"]["unserved_votes_taken"] > 0, "which the original site would have taken"


def crowd_thresholds():
    from bench.crowd_report import THRESHOLDS

    return THRESHOLDS


def test_it_refuses_to_empty_a_database_that_is_not_its_own(settings):
    from django.db import connection

    name = connection.settings_dict["NAME"]
    try:
        connection.settings_dict["NAME"] = "imagemonkey"
        with pytest.raises(RuntimeError, match="refusing"):
            crowd.reset_tables()
    finally:
        connection.settings_dict["NAME"] = name
    assert crowd.is_crowd_database("imagemonkey_crowd_2")
    assert not crowd.is_crowd_database("imagemonkey")
