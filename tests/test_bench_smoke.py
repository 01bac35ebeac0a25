"""Every benchmark of bench/ runs end to end at a tiny scale, so none can rot (issue 7).

The datasets, gunicorn, wrk (or the Python client), the export children and
the ingestion all run for real, against the pytest test database; nothing is
timed against a target here. What is checked: every benchmark reports its
figures under the names results.json uses, and every figure is a finite
number, positive where it measures something that takes time or space.
"""

import json
import math

import pytest

from bench import common, dataset, micro_cache, run

pytestmark = pytest.mark.django_db(transaction=True)

HEADLINES = [
    "select_flatness",
    "outline_select_flatness",
    "select_vs_original",
    "vote_vs_hello",
    "browse_vs_hello",
    "browse_vs_hello_uncached",
    "export_vs_copy",
    "export_vs_copy_csv",
    "export_vs_copy_json",
    "export_rss_ratio",
    "export_first_byte_ms",
    "image_export_vs_copy",
    "image_export_rss_ratio",
    "outline_export_vs_copy",
    "outline_export_rss_ratio",
    "ingest_vs_pillow",
    "browse_queries",
    "mixed_browse_p50_ms",
    "mixed_browse_p95_ms",
    "mixed_vote_p50_ms",
    "mixed_vote_p95_ms",
    "mixed_error_rate",
    "mixed_429_rate",
    "select_flatness_10m",
    "select_vs_original_10m",
    "browse_queries_10m",
    "export_rss_ratio_10m",
    "export_vs_copy_10m",
]
# Through Debian's nginx, where it is installed (a test installs nothing).
NGINX_HEADLINES = [
    "browse_vs_hello_nginx",
    "browse_vs_hello_nginx_cache",
    "nginx_mixed_browse_p95_ms",
    "nginx_mixed_vote_p95_ms",
]
# Counts of bad things and spreads: zero is the good answer.
MAY_BE_ZERO = ("_rate", "_spread", "_failures", "_requests")


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setenv("BENCH_NO_INSTALL", "1")  # a test installs no packages
    scale = common.SCALES["tiny"]
    dataset.ensure(scale.large, quiet=True)
    return common.Context(scale=scale, databases={scale.large: common.current_database()})


def test_every_benchmark_runs_and_reports_finite_figures(tiny, tmp_path, monkeypatch):
    results = run.run_benchmarks(tiny, progress=False)

    expected = HEADLINES + (NGINX_HEADLINES if micro_cache.find_nginx() else [])
    missing = [name for name in expected if name not in results]
    assert not missing, f"not reported: {missing}"
    for name, value in results.items():
        assert isinstance(value, int | float) and math.isfinite(value), (name, value)
        if name.endswith(MAY_BE_ZERO):
            assert value >= 0, (name, value)
        else:
            assert value > 0, (name, value)

    # The report files are written from the same figures, with a target per headline.
    monkeypatch.setattr(run, "RESULTS_JSON", tmp_path / "results.json")
    monkeypatch.setattr(run, "RESULTS_MD", tmp_path / "RESULTS.md")
    run.write_results(tiny.scale, results, tiny.details, seconds=1.0)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["select_flatness"] == pytest.approx(results["select_flatness"], rel=1e-3)
    assert written["machine"]["cores"] >= 1
    table = (tmp_path / "RESULTS.md").read_text()
    for name in run.TARGETS:
        assert f"| `{name}` |" in table


def test_the_dataset_is_reused_and_reset(tiny):
    first = dataset.ensure(tiny.scale.large, quiet=True)
    assert first["reused"] is True
    counts = first["counts"]
    assert counts["pairs"] == tiny.scale.large
    assert 0 < counts["servable_pairs"] < counts["pairs"]
    assert counts["bench_voter_votes"] > 0

    from donations.models import ImageLabel
    from people.models import Voter
    from validation.models import Vote

    pair = ImageLabel.objects.filter(servable=True).first()
    dataset.remember_pairs([pair.pk])
    voter = Voter.objects.create(trusted=True)
    Vote.objects.create(pair=pair, voter=voter, answer=1, counted=True)
    ImageLabel.objects.filter(pk=pair.pk).update(num_yes=99)

    dataset.reset()

    assert not Voter.objects.filter(pk=voter.pk).exists()
    assert Vote.objects.count() == counts["votes"]
    pair.refresh_from_db()
    assert pair.num_yes != 99


def test_the_outline_generator_stores_what_drawing_would_and_is_idempotent(tiny):
    from annotations.geometry import measured
    from annotations.models import Annotation, AnnotationRevision
    from annotations.shapes import clean_shapes
    from bench import outline_export

    made = outline_export.ensure_outlines(tiny.scale.large, quiet=True)
    assert made["shapes"] >= tiny.scale.large
    assert outline_export.ensure_outlines(tiny.scale.large, quiet=True)["reused"] is True
    assert Annotation.objects.exclude(status=Annotation.Status.ACCEPTED).count() == 0
    revisions = AnnotationRevision.objects.select_related("annotation__pair__image")
    assert revisions.count() == made["outlines"]
    for revision in revisions[:50]:
        image = revision.annotation.pair.image
        stored = {
            "export_original": revision.export_original,
            "export_coco": revision.export_coco,
            "coverage": revision.coverage,
        }
        # As drawing measures them: the clean shapes (jsonb does not keep their keys' order).
        clean = clean_shapes(revision.shapes, image.width, image.height)
        assert stored == measured(clean, image.width, image.height)
    dataset.reset()
    assert Annotation.objects.count() == 0
