"""Site-wide pages: home, about, health, errors."""

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from donations.models import Image, ImageLabel
from labels.models import Label
from people.http import wants_json
from people.pagecache import anonymous_page_cache
from validation import demo

HOME_COUNTS_SECONDS = 30


def home_counts() -> dict[str, int]:
    """Live totals for the home page, cached briefly so a visit aggregates nothing big."""
    counts = cache.get("home:counts")
    if counts is None:
        counts = {
            "images": Image.objects.public().count(),
            "labels": Label.objects.taggable().top_level().count(),
            "validated": ImageLabel.objects.public().validated().count(),
        }
        cache.set("home:counts", counts, HOME_COUNTS_SECONDS)
    return counts


@require_safe
@anonymous_page_cache()
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"counts": home_counts()})


@require_safe
def about(request: HttpRequest) -> HttpResponse:
    return render(request, "about.html", {"demo_samples": demo.SAMPLES})


@require_safe
def api_docs(request: HttpRequest) -> HttpResponse:
    base = f"{request.scheme}://{request.get_host()}"
    return render(request, "api.html", {"base": base})


ROBOTS = """\
# Pictures, labels and the dataset pages are for everyone; forms, the API and moderation
# are not for crawlers.
User-agent: *
Disallow: /admin/
Disallow: /moderation/
Disallow: /v1/
Disallow: /validate
Disallow: /label
Disallow: /donate
Disallow: /me
Disallow: /export?
"""


@require_safe
def robots(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(ROBOTS, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says: send them the real icon."""
    response = HttpResponsePermanentRedirect(static("img/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_safe
def ping(request: HttpRequest) -> HttpResponse:
    """The cheapest possible answer: the framework's own ceiling, for benchmarks."""
    return HttpResponse("pong", content_type="text/plain")


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and Redis reachable? 200 when both are, 503 naming what is not."""
    from django.core.cache import caches

    problems = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        problems.append("database")
    try:
        caches["ratelimit"].get("healthz")
    except Exception:
        problems.append("redis")
    if problems:
        return JsonResponse({"status": "unhealthy", "failing": problems}, status=503)
    return JsonResponse({"status": "ok"})


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"error": "not found"}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"error": "internal error; it has been logged"}, status=500)
    # No context processors here: the error may have come from them.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
