"""/releases (the page), /v1/releases, /v1/releases/<id>/changes and /v1/revocations.jsonl."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from people.http import json_error, public_read
from people.ratelimits import limit

from .export import snapshot
from .formats import FORMATS
from .models import SLUG_MAX_LENGTH, SLUG_PATTERN, Release
from .releases import changes_sql, revocation_lines
from .views import attachment

# The tar adds about this much to each file (a PAX header and padding), which
# the estimate of a release's size counts on top of the master files.
TAR_BYTES_PER_FILE = 1536
REVOCATIONS_CACHE = "public, max-age=300"
PURGE_SCRIPT = Path(__file__).with_name("purge_revoked.py")


def release_json(release: Release) -> dict:
    return {
        "id": release.slug,
        "created": release.created.isoformat(),
        "snapshot": release.snapshot.isoformat(),
        "query": release.query,
        "min_probability": release.min_probability,
        "min_confidence": release.min_confidence,
        "notes": release.notes,
        "images": release.images,
        "pairs": release.pairs,
        "estimated_tar_bytes": estimated_tar_bytes(release),
        "previous": release.previous.slug if release.previous else None,
        "changes_since_previous": {
            "added": release.added,
            "removed": release.removed,
            "changed": release.changed,
        },
        "outlines": release.outlines,
        "outline_changes_since_previous": {
            "added": release.outlines_added,
            "removed": release.outlines_removed,
            "changed": release.outlines_changed,
        },
        "labels": [
            {"label": label.label, "sublabel": label.sublabel, "pairs": label.pairs}
            for label in release.labels.all()
        ],
        "quality": release.quality,
    }


def estimated_tar_bytes(release: Release) -> int:
    """The masters' sizes when cut, plus tar headers; files in several folders not counted twice."""
    return release.master_bytes + TAR_BYTES_PER_FILE * release.images


def releases_list():
    return Release.objects.select_related("previous").prefetch_related("labels")


@public_read
def releases(request: HttpRequest) -> JsonResponse:
    """Every release, newest first."""
    return JsonResponse([release_json(release) for release in releases_list()], safe=False)


def named(slug: str) -> Release | None:
    """The release of that id; None for an id no release can have (NUL, slashes, …) too."""
    if len(slug) > SLUG_MAX_LENGTH or not re.fullmatch(SLUG_PATTERN, slug):
        return None
    return Release.objects.filter(slug=slug).select_related("previous").first()


@public_read
@limit("export", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def release_changes(request: HttpRequest, slug: str) -> HttpResponse:
    """The pairs, then the outlines, added, removed or changed since `since` (default: the
    previous release; for the first release, everything is added)."""
    new = named(slug)
    if new is None:
        return json_error(f"there is no release {slug!r}; see /v1/releases", 404)
    if "since" in request.GET:  # even empty: it names a release, and none is called ""
        since = request.GET["since"]
        old = named(since)
        if old is None:
            return json_error(f"since: there is no release {since!r}", 404)
    else:
        old = new.previous  # None for the first release: every pair is added
    body = iter(()) if request.method == "HEAD" else _lines(changes_sql(old, new))
    response = StreamingHttpResponse(body, content_type="application/x-ndjson")
    since_name = old.slug if old else "nothing"
    response["Content-Disposition"] = attachment(
        f"imagemonkey-changes-{since_name}-to-{new.slug}.jsonl"
    )
    return response


def _lines(queries):
    with snapshot() as snap:
        for sql in queries:
            yield from snap.copy_lines(sql)


@public_read
def revocations(request: HttpRequest) -> HttpResponse:
    """Every picture taken down after it was public, one JSON object per line, oldest first."""
    body = iter(()) if request.method == "HEAD" else revocation_lines()
    response = StreamingHttpResponse(body, content_type="application/x-ndjson")
    response["Cache-Control"] = REVOCATIONS_CACHE
    return response


@require_safe
def purge_script(request: HttpRequest) -> HttpResponse:
    """The standalone purge script, to save and run with python3."""
    response = HttpResponse(PURGE_SCRIPT.read_bytes(), content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = attachment("purge_revoked.py")
    return response


@require_safe
def releases_page(request: HttpRequest) -> HttpResponse:
    """Every release with its notes, counts, size, downloads and changes since the one before."""
    rows = []
    export_url = reverse("exports:api-export")
    for release in releases_list():
        downloads = [
            (chosen.title, f"{export_url}?{urlencode({'release': release.slug, 'format': name})}")
            for name, chosen in FORMATS.items()
        ]
        rows.append(
            {"release": release, "downloads": downloads, "size": estimated_tar_bytes(release)}
        )
    return render(request, "exports/releases.html", {"rows": rows})
