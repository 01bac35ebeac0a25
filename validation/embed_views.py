"""/verify: the one question of /validate, as the original's browser extensions frame it.

`/verify?show_header=false&show_footer=false&only_once=true&callback=true` shows one
picture without the site's header and footer; once it is answered, the page thanks the
visitor and, with `callback`, tells the framing page `"done button pressed"` by
postMessage. This page alone may be framed, and only by the origins of the setting
EMBED_ALLOWED_ORIGINS (CSP frame-ancestors; no X-Frame-Options); every other page
refuses framing.

Framed by another site, the browser sends this site's cookies with nothing (they are
SameSite=Lax), so a framed answer cannot be a form post with a CSRF token: the page's
script sends it to the API (`/v1/donation/<uuid>/validate/…`), as an anonymous voter
with the ticket issued here for one (validation.tickets). Not framed, the page's form
posts as /validate's does.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from people.http import flag
from people.identity import client_ip, ip_prefix, new_voter

from . import selection, tickets
from .views import task_context, training_note

# The original's parameters: (name, its value when absent).
EMBED_FLAGS = (
    ("show_header", True),
    ("show_footer", True),
    ("only_once", False),
    ("callback", False),
)


def embed_flags(request: HttpRequest) -> dict[str, bool]:
    """The page's four switches; ValueError naming one that is not true or false."""
    return {
        name: flag(request, name) if name in request.GET else default
        for name, default in EMBED_FLAGS
    }


def allow_framing(response: HttpResponse) -> HttpResponse:
    """Let the origins of EMBED_ALLOWED_ORIGINS, and no other, frame this response."""
    origins = settings.EMBED_ALLOWED_ORIGINS
    response._csp_replace = {"frame-ancestors": origins or ["'none'"]}
    if origins:
        response.xframe_options_exempt = True  # frame-ancestors says who may
    return response


@require_safe
def verify(request: HttpRequest) -> HttpResponse:
    try:
        flags = embed_flags(request)
    except ValueError as error:
        response = HttpResponse(f"{error}.", status=400, content_type="text/plain; charset=utf-8")
        return allow_framing(response)
    pair = selection.next_task(request.voter)
    context = {**flags, "parent_origins": settings.EMBED_ALLOWED_ORIGINS}
    if pair is not None:
        network = ip_prefix(client_ip(request))
        context["task"] = task_context(pair, request.voter, network)
        # The framed page votes through the API as a fresh anonymous voter.
        context["api_ticket"] = tickets.issue(new_voter(request), pair, network)
        context["image_uuid"] = str(pair.image.uuid)
        context["training"] = training_note(request.voter)
    return allow_framing(render(request, "validation/verify.html", context))
