"""The anonymous page cache: public pages rendered once every few seconds, not per visit.

`@anonymous_page_cache(params=…)` on a view keeps its HTML in Redis for
`PAGE_CACHE_SECONDS` (keyed by path and query), for visitors who bring nothing of their
own: a GET with no cookie but the CSRF cookie, no voter or API token, no Authorization,
and no query parameter the page does not know. Everyone else gets the page rendered for them, as
before — a browser that has just posted too, since it holds the read-your-writes cookie
(people/replicas.py). That costs one Redis read per answer; the address-keyed mark that
replicas also use is not asked (a second read): a client that keeps no cookie and sends no
token writes nothing a cached page shows (its votes weigh nothing yet, its reports hide
nothing, its donations wait for review).

Nothing personal is stored. The page is rendered as an anonymous visitor sees it, and a
form's CSRF token is stored as a placeholder that each answer replaces with a token of
its own visitor (masked afresh, as Django does, and setting that visitor's cookie when
they have none). Only a plain 200 is stored: never one that sets a cookie, that the view
marked private, or a stream. Pages answer `Vary: Cookie` whether they came from the cache
or not, so that no shared cache in front mixes signed-in and anonymous visitors.

The pages that hold no form (browse, labels, statistics, home) are the same bytes for
every such visitor, and say so to nginx: `X-Accel-Expires` with what is left of their
lifetime, which nginx's micro-cache (deploy/nginx) heeds, for requests that bring no
cookie and no token at all, and answers without reaching Python (bench/micro_cache.py
measures both caches); a page is never older than `PAGE_CACHE_SECONDS` in either. A page
with a form (a picture's) is not offered: its CSRF token is each visitor's.

Each process also keeps the pages it served for up to `LOCAL_SECONDS` (2 s) in memory,
decompressed, so that the busiest pages do not wait on Redis nor zlib at every visit (on a loaded machine, each
round trip to Redis costs more than a whole /ping).

Invalidation is the short lifetime: a vote or a moderation decision shows to other
visitors within `PAGE_CACHE_SECONDS` (10 s by default), and at once to whoever made it.
A picture taken out of view also leaves the cache at once (its page, through
`forget_page`; other processes' memory within 2 s); the browse pages that showed its thumbnail keep it for their 10 s, with
its files already gone from /media/.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils.cache import patch_vary_headers
from django.utils.crypto import salted_hmac

from .identity import API_TOKEN_HEADER, TOKEN_HEADER

VERSION = 2  # part of every key: a release that changes a page's shape starts afresh
MAX_QUERY_LENGTH = 256
STORED_HEADERS = ("Content-Type", "Content-Language")
HIT_HEADER = "X-Page-Cache"
# How many more seconds the answer may be kept by nginx's micro-cache (deploy/nginx), which
# stores nothing else: set only on the pages that are the same bytes for every visitor (no
# form, so no visitor's CSRF token), for what is left of the stored page's lifetime, so
# that a page is never older than PAGE_CACHE_SECONDS in either cache. nginx does not pass
# the header on to the client.
SHARED_CACHE_HEADER = "X-Accel-Expires"
LOCAL_SECONDS = 2.0  # how long a process keeps a page it got from Redis in memory
LOCAL_MAX = 256  # pages kept in memory per process at most

_local_lock = threading.Lock()
_local: dict[str, tuple[float, dict, bytes]] = {}


def _get(key: str) -> tuple[dict, bytes] | None:
    """The stored page and its body, from this process's memory or else from Redis."""
    now = time.monotonic()
    kept = _local.get(key)
    if kept is not None and kept[0] > now:
        return kept[1], kept[2]
    stored = cache.get(key)
    if stored is None:
        return None
    body = _body(stored)
    _keep(key, stored, body, now)
    return stored, body


def _keep(key: str, stored: dict, body: bytes, now: float) -> None:
    """Keep the page in memory, its body already decompressed: a hit only copies it."""
    with _local_lock:
        if len(_local) >= LOCAL_MAX:
            _local.clear()
        _local[key] = (now + min(LOCAL_SECONDS, settings.PAGE_CACHE_SECONDS), stored, body)


def clear_local() -> None:
    """Forget the pages this process keeps in memory (tests; Redis keeps its own)."""
    with _local_lock:
        _local.clear()


def csrf_placeholder() -> str:
    """What a cached page holds where its form's CSRF token goes: no visitor's token.

    Derived from SECRET_KEY, so every app host writes the same one and nobody else can
    plant it in a text that a page shows.
    """
    return salted_hmac("people.pagecache.csrf", "placeholder").hexdigest()


def is_rendering_for_cache(request: HttpRequest) -> bool:
    return getattr(request, "_rendering_for_cache", False)


def may_use_cache(request: HttpRequest, params: Iterable[str]) -> bool:
    """Whether this visitor brings nothing that could make the page theirs."""
    if settings.PAGE_CACHE_SECONDS <= 0 or request.method != "GET":
        return False
    if set(request.COOKIES) - {settings.CSRF_COOKIE_NAME}:
        return False  # a session, a message waiting, a recent write: theirs alone
    if {TOKEN_HEADER, API_TOKEN_HEADER, "HTTP_AUTHORIZATION"} & request.META.keys():
        return False  # the same headers that make nginx's micro-cache step aside
    if len(request.META.get("QUERY_STRING", "")) > MAX_QUERY_LENGTH:
        return False
    return not set(request.GET) - set(params)  # other parameters would only fill the cache


def page_key(request: HttpRequest) -> str:
    return _key(request.get_full_path())


def _key(full_path: str) -> str:
    digest = hashlib.sha256(full_path.encode()).hexdigest()[:40]
    return f"page:{VERSION}:{digest}"


def forget_page(path: str) -> None:
    """Drop the cached page at `path` (no query string): a picture that was just hidden."""
    key = _key(path)
    cache.delete(key)
    with _local_lock:
        _local.pop(key, None)


def may_store(response: HttpResponse) -> bool:
    if response.status_code != 200 or response.streaming or response.cookies:
        return False
    cache_control = response.get("Cache-Control", "")
    return "private" not in cache_control and "no-store" not in cache_control


def _stored(response: HttpResponse) -> dict:
    return {
        "body": base64.b64encode(zlib.compress(response.content, 1)).decode("ascii"),
        "headers": {name: response[name] for name in STORED_HEADERS if name in response},
        "until": time.time() + settings.PAGE_CACHE_SECONDS,  # wall clock: shared by hosts
    }


def _body(stored: dict) -> bytes:
    return zlib.decompress(base64.b64decode(stored["body"]))


def _response(stored: dict, body: bytes | None = None) -> HttpResponse:
    response = HttpResponse(_body(stored) if body is None else body)
    for name, value in stored["headers"].items():
        response[name] = value
    return response


def _for_this_visitor(
    request: HttpRequest, response: HttpResponse, stored: dict | None
) -> HttpResponse:
    """Put this visitor's own CSRF token where the placeholder is. A stored page without
    one is the same for everyone: nginx may keep it for the rest of its lifetime."""
    placeholder = csrf_placeholder().encode()
    if placeholder in response.content:
        response.content = response.content.replace(placeholder, get_token(request).encode())
    elif stored is not None and (left := int(stored["until"] - time.time())) > 0:
        response[SHARED_CACHE_HEADER] = str(left)
    patch_vary_headers(response, ["Cookie"])
    return response


def anonymous_page_cache(
    params: Iterable[str] = (),
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Cache the view's page for anonymous visitors; `params` are the query parameters it reads."""
    params = tuple(params)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not may_use_cache(request, params):
                response = view(request, *args, **kwargs)
                patch_vary_headers(response, ["Cookie"])
                return response
            key = page_key(request)
            found = _get(key)
            if found is not None:
                stored, body = found
                response = _response(stored, body)
                response[HIT_HEADER] = "hit"
                return _for_this_visitor(request, response, stored)
            request._rendering_for_cache = True
            try:
                response = view(request, *args, **kwargs)
            finally:
                request._rendering_for_cache = False
            if not may_store(response):
                return _for_this_visitor(request, response, None)
            stored = _stored(response)
            cache.set(key, stored, settings.PAGE_CACHE_SECONDS)
            _keep(key, stored, response.content, time.monotonic())
            response[HIT_HEADER] = "miss"
            return _for_this_visitor(request, response, stored)

        return wrapper

    return decorator
