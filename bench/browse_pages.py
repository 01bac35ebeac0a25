"""browse_queries: SQL queries for one /browse page, whatever its size and depth.

Django's test Client requests /browse against the bench database (the large
dataset) inside CaptureQueriesContext: the first page, a page half-way down
the keyset pagination (`?after=`), a label's page and a label's validated
pairs, each with 12, 48 (the site's size) and 96 pictures per page. The
headline is the count for the site's page of 48; `browse_queries_spread`
(largest − smallest count over the sizes and depths of one kind of page; a
label's page looks its label up, one query more) is 0 when it is constant.
The times of the first and the deep page show that depth costs nothing.
"""

from __future__ import annotations

from contextlib import contextmanager

from .common import Context, median, ratio, timed, use_database

PAGE_SIZES = (12, 48, 96)


@contextmanager
def _page_size(size: int):
    from donations import views

    saved = views.PAGE_SIZE
    views.PAGE_SIZE = size
    try:
        yield
    finally:
        views.PAGE_SIZE = saved


def _cases() -> dict[str, str]:
    from donations.models import Image, ImageLabel
    from donations.views import make_cursor

    public = Image.objects.public().order_by("-created", "-pk")
    total = public.count()
    deep = public.only("pk", "created")[max(0, total // 2)]
    popular = (
        ImageLabel.objects.filter(label__parent__isnull=True)
        .values_list("label__slug", flat=True)
        .order_by("label_id")
        .first()
    )
    label = "dog" if ImageLabel.objects.filter(label__slug="dog").exists() else popular
    return {
        "first": "/browse",
        "deep": f"/browse?after={make_cursor(deep)}",
        "label": f"/browse?label={label}",
        "label_validated": f"/browse?label={label}&state=validated",
    }


def query_counts(database: str) -> dict[str, int]:
    """SQL queries per kind of /browse page and page size (`first@48`…) on `database`."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    use_database(database)
    client = Client(HTTP_HOST="127.0.0.1")
    cases = _cases()
    counts: dict[str, int] = {}
    # The queries of rendering a page: the page cache would answer the second request
    # (and, in a process that visits two databases, the first) without any.
    for size in PAGE_SIZES:
        with _page_size(size), override_settings(PAGE_CACHE_SECONDS=0):
            for name, url in cases.items():
                client.get(url)  # warm: the first request of a process imports and compiles
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")
                counts[f"{name}@{size}"] = len(captured.captured_queries)
    return counts


def browse_queries(ctx: Context) -> dict:
    from django.test import Client, override_settings

    counts = query_counts(ctx.large)
    client = Client(HTTP_HOST="127.0.0.1")
    cases = _cases()
    first_times: list[float] = []
    deep_times: list[float] = []
    with override_settings(PAGE_CACHE_SECONDS=0):  # rendering the pages, not the cache
        for _ in range(max(3, ctx.scale.select_rounds)):  # alternately, so noise hits both
            first_times += timed(lambda: client.get(cases["first"]), 1)
            deep_times += timed(lambda: client.get(cases["deep"]), 1)
    first, deep = median(first_times), median(deep_times)
    ctx.details["browse_query_counts"] = counts
    # Per kind of page (a label's page looks the label up: one query more), over
    # every size, and first and deep pages together: the count must not move.
    groups = {"first": "all", "deep": "all", "label": "label", "label_validated": "state"}
    by_group: dict[str, list[int]] = {}
    for case, count in counts.items():
        by_group.setdefault(groups[case.split("@")[0]], []).append(count)
    return {
        "browse_queries": counts["first@48"],
        "browse_queries_spread": max(max(v) - min(v) for v in by_group.values()),
        "browse_ms_first_page": first * 1000,
        "browse_ms_deep_page": deep * 1000,
        "browse_deep_vs_first": ratio(deep, first),
    }
