"""Small pieces every /v1/ view shares: JSON errors and CORS for read-only GETs."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse


def json_error(reason: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": reason, **extra}, status=status)


def public_read(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET/HEAD only, readable from any origin (as the original API was)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
        elif request.method not in ("GET", "HEAD"):
            response = json_error(f"{request.method} is not allowed here; use GET", 405)
            response["Allow"] = "GET, HEAD, OPTIONS"
        else:
            response = view(request, *args, **kwargs)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        return response

    return wrapper
