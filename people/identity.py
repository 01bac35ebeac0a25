"""Who is voting: a voter bound to the session, the account, or an API token.

API calls name their caller by a token: an account's API token (`imk_…`, in
`Authorization: Bearer`, `X-Api-Token` or `X-Voter-Token`), or an anonymous
voter token from POST /v1/voter (`X-Voter-Token`).

A voter row is written only by a request that writes something else too (a
vote, a donation, a report): a GET or HEAD gets the existing voter, or an
unsaved stand-in for a visitor who has none, so crawlers write nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .http import json_error
from .models import ApiToken, Voter

SESSION_KEY = "voter_id"
TOKEN_HEADER = "HTTP_X_VOTER_TOKEN"  # noqa: S105 - a header name
API_TOKEN_HEADER = "HTTP_X_API_TOKEN"  # noqa: S105 - the original ImageMonkey's header
UNKNOWN_TOKEN = "unknown X-Voter-Token; ask POST /v1/voter for a new one"  # noqa: S105
UNKNOWN_API_TOKEN = "unknown API token"  # noqa: S105
ANY_SCOPE = "*"  # a view that any valid API token may call (logging out, managing tokens)


def client_ip(request: HttpRequest) -> str:
    """The client address. Behind nginx, only nginx can set it (see settings)."""
    value = request.META.get(settings.RATELIMIT_IP_META_KEY) or request.META.get("REMOTE_ADDR")
    return (value or "0.0.0.0").split(",")[0].strip()  # noqa: S104 - a fallback value, not a bind


def _is_octet(text: str) -> bool:
    """A decimal 0–255 written as ipaddress accepts it (ASCII digits, no leading zero)."""
    return (
        0 < len(text) <= 3
        and text.isascii()
        and text.isdigit()
        and (text == "0" or text[0] != "0")
        and int(text) <= 255
    )


def ip_prefix(address: str) -> str:
    """The /24 of an IPv4 address or the /48 of an IPv6 address, as a network string."""
    octets = address.split(".")
    if len(octets) == 4 and all(_is_octet(o) for o in octets):
        # The common case, without building ipaddress objects on every vote.
        return f"{octets[0]}.{octets[1]}.{octets[2]}.0/24"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    # A home or a small cloud customer gets a /48 (or /56) of IPv6: one network, not 65,536.
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def presented_api_token(request: HttpRequest) -> str | None:
    """The account API token the request carries, in any of the three headers, or None."""
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    if token := request.META.get(API_TOKEN_HEADER, "").strip():
        return token
    token = request.META.get(TOKEN_HEADER, "").strip()
    if token.startswith(ApiToken.MARK):
        return token
    return None


def voter_from_token(request: HttpRequest) -> Voter | None:
    token = request.META.get(TOKEN_HEADER, "").strip()
    if not token or token.startswith(ApiToken.MARK):
        return None
    return Voter.objects.with_token(token)


def session_voter(request: HttpRequest) -> Voter | None:
    """The anonymous voter this browser's session holds, if any."""
    pk = request.session.get(SESSION_KEY)
    if pk is None:
        return None
    return Voter.objects.filter(pk=pk, user__isnull=True, token_sha256__isnull=True).first()


def account_voter(user, request: HttpRequest, *, writes: bool) -> Voter:
    """The account's voter; created (on a write only) when the account has none yet."""
    voter = Voter.objects.filter(user=user).first()
    if voter is not None:
        return voter
    if not writes:
        voter = new_voter(request)
        voter.user = user
        return voter
    voter, _ = Voter.objects.get_or_create(
        user=user, defaults={"first_ip_prefix": ip_prefix(client_ip(request))}
    )
    return voter


SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def new_voter(request: HttpRequest) -> Voter:
    """An unsaved voter for this request's client; saving it is the caller's choice."""
    return Voter(first_ip_prefix=ip_prefix(client_ip(request)))


def voter_for_request(request: HttpRequest) -> Voter:
    """The request's voter. Created on the first request that writes, never on a read.

    Precedence: an API token, then a logged-in account, then the session.
    A token that names no voter acts as a fresh anonymous voter.
    """
    writes = request.method not in SAFE_METHODS
    if request.META.get(TOKEN_HEADER):
        voter = voter_from_token(request) or new_voter(request)
        if writes and not voter.exists:
            voter.save()
        return voter
    user = getattr(request, "user", None)
    session = request.session
    if user is not None and user.is_authenticated:
        voter = Voter.objects.filter(user=user).first()
        if voter is None:
            session_voter = Voter.objects.filter(
                pk=session.get(SESSION_KEY), user__isnull=True, token_sha256__isnull=True
            ).first()
            voter = session_voter or new_voter(request)
            voter.user = user
            if writes:
                voter.save()
        return voter
    voter = Voter.objects.filter(pk=session.get(SESSION_KEY), user__isnull=True).first()
    if voter is None:
        voter = new_voter(request)
        if writes:
            voter.save()
            session[SESSION_KEY] = voter.pk
    return voter


def api_identity(view: Callable[..., HttpResponse] | None = None, *, scope: str | None = None):
    """Bind request.voter to the caller's token: an account's API token, the X-Voter-Token's
    voter, or else a fresh anonymous one.

    Never the session's: another site cannot vote with a visitor's cookies.
    A token that names nothing is refused (401) rather than silently replaced; so is
    a revoked or expired API token. An API token must hold the view's `scope`
    (`read` for a GET when the view names none; a write that names none takes no
    API token at all): otherwise 403 with the reason. The fresh voter is an unsaved
    stand-in: a read (GET /v1/validate) writes nothing, and a vote saves it
    (voting.record_vote). Used bare (`@api_identity`) or with a scope
    (`@api_identity(scope="vote")`).
    """
    if view is None:
        return lambda inner: api_identity(inner, scope=scope)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        request.api_token = None
        writes = request.method not in SAFE_METHODS
        if (plaintext := presented_api_token(request)) is not None:
            token = ApiToken.objects.presented(plaintext)
            if token is None:
                return json_error(UNKNOWN_API_TOKEN, 401)
            if (refusal := token.refusal()) is not None:
                return json_error(refusal, 401)
            needed = scope or (None if writes else ApiToken.Scope.READ)
            if needed is None or (needed != ANY_SCOPE and not token.allows(needed)):
                granted = ", ".join(token.scopes)
                return json_error(
                    f"this API token's scopes ({granted}) do not include {needed or 'this call'}",
                    403,
                    scope=needed,
                )
            token.note_use(writes=writes)
            request.api_token = token
            request.voter = request.token_voter = account_voter(token.user, request, writes=writes)
            return view(request, *args, **kwargs)
        token_voter = None
        if TOKEN_HEADER in request.META:
            token_voter = voter_from_token(request)
            if token_voter is None:
                return json_error(UNKNOWN_TOKEN, 401)
        request.voter = token_voter or new_voter(request)
        request.token_voter = token_voter
        return view(request, *args, **kwargs)

    return wrapper
