"""Rate limits on Redis, shared by every gunicorn worker.

`limit("vote", "VOTE_RATE")` counts requests per client address and per
voter. A request that carries several items (a batch of votes, a form of
files) spends one unit per item: the view calls `spend()` for the rest once it
knows how many there are. When Redis cannot be reached the limited view
answers 503 with a reason: a limit must never silently fail open, and never
turn into a 500.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage, is_ratelimited

from .http import wants_json
from .identity import TOKEN_HEADER, client_ip, ip_prefix
from .models import Voter

log = logging.getLogger(__name__)

UNAVAILABLE = "This is unavailable for a moment (our rate limiter cannot be reached). Please try again shortly."


def voter_key(group: str, request: HttpRequest) -> str:
    """The caller: by account when an API token or a signed-in session names one (all of
    an account's tokens share its limits), by their voter token's hash when they send one
    (one token, one voter: no lookup needed), else by request.voter."""
    if (api_token := getattr(request, "api_token", None)) is not None:
        return f"account:{api_token.user_id}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and not request.path.startswith("/v1/"):
        return f"account:{user.pk}"
    if token := request.META.get(TOKEN_HEADER, "").strip():
        return f"token:{Voter.hash_token(token)}"
    voter = request.voter
    if not voter.exists:  # a visitor's first write: the address is all there is to count
        return f"visitor:{client_ip(request)}"
    return f"voter:{voter.pk}"


def network_key(group: str, request: HttpRequest) -> str:
    """The client's network: its /24 (IPv4) or /48 (IPv6)."""
    return f"network:{ip_prefix(client_ip(request))}"


TOO_MANY = "Too many requests in a short time. Please wait a minute and try again."


def _try_later(request: HttpRequest, status: int, message: str, seconds: int) -> HttpResponse:
    """A refusal with a reason and a Retry-After: JSON for the API, the page for people."""
    if wants_json(request):
        response = JsonResponse({"error": message}, status=status)
    else:
        response = render(request, f"{status}.html", {"message": message}, status=status)
    response["Retry-After"] = str(seconds)
    return response


def ratelimited(request: HttpRequest, exception=None) -> HttpResponse:
    """The answer over a limit (django-ratelimit's too): 429 with a reason."""
    return _try_later(request, 429, TOO_MANY, 60)


def unavailable(request: HttpRequest) -> HttpResponse:
    return _try_later(request, 503, UNAVAILABLE, 30)


def over_limit(
    request: HttpRequest, group: str, rate: str, keys: tuple = ("ip", voter_key)
) -> bool:
    """True when this request goes over `rate` for any of its keys (address, voter)."""
    for key in keys:
        if is_ratelimited(
            request, group=group, key=key, rate=rate, method=is_ratelimited.ALL, increment=True
        ):
            return True
    return False


def keys_for(by_address_only: bool = False, by_network: bool = False) -> tuple:
    if by_network:
        return (network_key,)
    if by_address_only:
        return ("ip",)
    return ("ip", voter_key)


def _refusal(
    request: HttpRequest, group: str, rate_setting: str, units: int, keys
) -> HttpResponse | None:
    """Spend `units` against the limit; the answer to send when that goes over, else None."""
    if not settings.RATELIMIT_ENABLE or units <= 0:
        return None
    rate = getattr(settings, rate_setting)
    try:
        limited = any(over_limit(request, group, rate, keys) for _ in range(units))
    except Exception as error:  # redis.exceptions.ConnectionError and friends
        log.error("rate limiter unavailable for %s: %s", group, error)
        return unavailable(request)
    if limited:
        log.warning("rate limit %s hit by %s", group, client_ip(request))
        return ratelimited(request)
    return None


def spend(request: HttpRequest, group: str, rate_setting: str, units: int) -> HttpResponse | None:
    """Spend `units` more of the limit the view's `limit()` already charged one for (the
    other items of a batch); the 429 or 503 to answer with when that goes over, else None."""
    return _refusal(request, group, rate_setting, units, keys_for())


def limit(
    group: str,
    rate_setting: str,
    methods: tuple[str, ...] = ("POST", "PUT", "PATCH", "DELETE"),
    by_address_only: bool = False,
    by_network: bool = False,
    by: tuple | None = None,
):
    """Decorate a view: over the limit → 429; Redis down → 503.

    Limits count per client address and per voter; `by_address_only` is for
    anonymous reads, where creating a voter per call would be waste, and
    `by_network` counts per /24 (or /48) instead: one count for a whole farm.
    """
    keys = by or keys_for(by_address_only, by_network)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in methods and (
                refused := _refusal(request, group, rate_setting, 1, keys)
            ):
                return refused
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# --- Sign-in ------------------------------------------------------------------------


def sign_in_name(request: HttpRequest) -> str:
    """The account a sign-in names: the admin's `username`, the site's `login` (a user
    name or an e-mail address), or what an API view read from HTTP Basic."""
    name = getattr(request, "sign_in_name", None)
    if name is None:
        name = request.POST.get("username") or request.POST.get("login") or ""
    return name.strip().lower()


def username_key(group: str, request: HttpRequest) -> str:
    """The account a sign-in names (hashed: no user name is stored in Redis)."""
    return "username:" + hashlib.sha256(sign_in_name(request).encode()).hexdigest()


def email_key(group: str, request: HttpRequest) -> str:
    """The address a password reset is asked for (hashed), registered or not."""
    address = request.POST.get("email", "").strip().lower()
    return "email:" + hashlib.sha256(address.encode()).hexdigest()


def throttle_reset(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate the password-reset view: PASSWORD_RESET_RATE requests per client address
    and per e-mail address, counted alike whether the address is registered or not."""
    return limit("password-reset", "PASSWORD_RESET_RATE", methods=("POST",), by=("ip", email_key))(
        view
    )


def _sign_in_counts(request: HttpRequest, *, increment: bool) -> bool:
    """Whether failed sign-ins have reached the limit for the address or the user name
    (counting one more failure first when `increment`)."""
    reached = False
    for key in ("ip", username_key):
        usage = get_usage(
            request,
            group="sign-in",
            key=key,
            rate=settings.LOGIN_FAILURE_RATE,
            increment=increment,
        )
        reached |= usage is not None and usage["count"] >= usage["limit"]
    return reached


def redirected(response: HttpResponse) -> bool:
    return 300 <= response.status_code < 400


def throttle_sign_in(
    view: Callable[..., HttpResponse], succeeded: Callable[[HttpResponse], bool] = redirected
) -> Callable[..., HttpResponse]:
    """Decorate a sign-in view: failed attempts count per address and per user name.

    Past LOGIN_FAILURE_RATE the next attempt is refused (429) before any password is
    checked. Only failures count, so an account's owner is not locked out by their own
    successful sign-ins; a success is what `succeeded` says (a page's redirect, a 3xx).
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST" or not settings.RATELIMIT_ENABLE:
            return view(request, *args, **kwargs)
        try:
            if _sign_in_counts(request, increment=False):
                log.warning("sign-in throttled for %s", client_ip(request))
                return ratelimited(request)
        except Exception as error:  # redis.exceptions.ConnectionError and friends
            log.error("rate limiter unavailable for sign-in: %s", error)
            return unavailable(request)
        response = view(request, *args, **kwargs)
        if not succeeded(response):
            try:
                _sign_in_counts(request, increment=True)
            except Exception as error:
                log.error("rate limiter unavailable for sign-in: %s", error)
        return response

    return wrapper
