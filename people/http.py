"""HTTP pieces every app's views share: JSON errors, one vocabulary for flags, JSON bodies,
and CORS for read-only GETs."""

import json
import uuid
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse


def wants_json(request: HttpRequest) -> bool:
    """Whether to answer in JSON: the API always, and a page's own scripts, which ask so."""
    return request.path.startswith("/v1/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def json_error(reason: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": reason, **extra}, status=status)


def method_not_allowed(*allowed: str) -> JsonResponse:
    response = json_error(f"use {' or '.join(allowed)} here", 405)
    response["Allow"] = ", ".join(allowed)
    return response


def allow(*methods: str) -> Callable:
    """Decorate an API view: any other method gets a JSON 405 before anything else runs."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                return method_not_allowed(*methods)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def from_another_site(request: HttpRequest) -> bool:
    """Whether a browser sent this request from a page of another site.

    Browsers name the page's origin on every cross-origin POST; scripts and apps send
    none. "null" is a sandboxed or local page, which may be anyone's. Browser
    extensions (chrome-extension://…) are the user's own choice and may write.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc != request.get_host()


def api_write(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate an API view that changes something: no CSRF token (API clients carry
    none, and identify by token, never by cookie), but a page of another site cannot
    make a visitor's browser send it: 403 with the reason."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if from_another_site(request):
            return json_error("pages of other sites cannot write through this API", 403)
        return view(request, *args, **kwargs)

    wrapper.csrf_exempt = True
    return wrapper


def flag(request: HttpRequest, name: str, *, in_body: bool = False) -> bool:
    """A true/false parameter of the query (or, `in_body`, of the form body); absent is
    false; ValueError for anything else."""
    values = request.POST if in_body else request.GET
    if name not in values:
        return False
    value = values[name]
    if value in FLAG_VALUES:
        return FLAG_VALUES[value]
    raise ValueError(f"{name} is true or false")


FLAG_VALUES = {"true": True, "1": True, "false": False, "0": False}


def public_read(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET/HEAD only, readable from any origin (as the original API was)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
        elif request.method not in ("GET", "HEAD"):
            response = method_not_allowed("GET", "HEAD", "OPTIONS")
        else:
            response = view(request, *args, **kwargs)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        return response

    # These views change nothing, whatever the method: any other method gets a
    # JSON 405 from the view instead of the CSRF middleware's HTML 403.
    wrapper.csrf_exempt = True
    return wrapper


class BadBody(ValueError):
    """A request body refused, with the reason and the status to answer with."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


JSON_DEPTH_MAX = 20  # no body of the API nests deeper than 3


def read_json(
    request: HttpRequest, *, array: bool = False, allow_list: bool = False
) -> dict | list:
    """The request body as a JSON object (`array`: a JSON array; `allow_list`: either);
    BadBody with a reason otherwise.

    The body must say it is JSON: a page elsewhere can make a browser send text/plain
    or a form without asking first (a CORS-simple request), never application/json.
    Text that the caller stores must pass is_storable_text as well.
    """
    if not request.body:
        return [] if array else {}
    if request.content_type != "application/json":
        raise BadBody("send the body as JSON, with Content-Type: application/json", 415)
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadBody("the body is not valid JSON") from None
    except RecursionError:
        raise BadBody("the body is nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise BadBody("a number in the body has too many digits") from None
    _check_depth(body)
    if allow_list and isinstance(body, list):
        return body
    if array and not isinstance(body, list):
        raise BadBody("the body must be a JSON array")
    if not array and not isinstance(body, dict):
        raise BadBody("the body must be a JSON object")
    return body


def _check_depth(body: object) -> None:
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > JSON_DEPTH_MAX:
            raise BadBody("the body is nested too deeply")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def is_storable_text(text: str) -> bool:
    """Whether PostgreSQL can store this text: no NUL, and valid UTF-8 once encoded."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse_uuid(text: object) -> uuid.UUID | None:
    """The UUID a client sent (a query parameter, a JSON field), or None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
