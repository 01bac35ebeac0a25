"""Small pieces every /v1/ view shares: JSON errors and CORS for read-only GETs."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse


def json_error(reason: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": reason, **extra}, status=status)


def method_not_allowed(*allowed: str) -> JsonResponse:
    response = json_error(f"use {' or '.join(allowed)} here", 405)
    response["Allow"] = ", ".join(allowed)
    return response


def flag(request: HttpRequest, name: str) -> bool:
    """A true/false query parameter; ValueError for anything else."""
    if name not in request.GET:
        return False
    value = request.GET[name]
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
