"""/v1/ account endpoints in the original ImageMonkey's shapes: login (HTTP Basic → token),
logout, signup, a user's profile, and API tokens.

The original's login answered a JWT; ours is an API token (`imk_…`) like those made in
the settings page, valid a week as the original's was, with every scope. Sending it as
`Authorization: Bearer` (or `X-Api-Token`) acts as the account's voter.
"""

from __future__ import annotations

import base64
import binascii

from allauth.account.forms import SignupForm
from allauth.account.internal.flows.signup import complete_signup
from allauth.account.utils import has_verified_email
from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse

from donations.models import Image
from validation import adoption
from validation.statistics import public_numbers

from .http import BadBody, allow, api_write, is_storable_text, json_error, public_read, read_json
from .identity import ANY_SCOPE, api_identity, voter_from_token
from .models import ApiToken, Voter
from .ratelimits import limit, throttle_sign_in

LOGIN_TOKEN_DAYS = 7  # the original's login token lived a week
CHECK_YOUR_MAIL = "check your e-mail: the link in it confirms the address, then you can log in"


def basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, colon, password = decoded.partition(":")
    if not colon or not name or not is_storable_text(decoded):
        return None
    return name, password


def _check_password(request: HttpRequest) -> HttpResponse:
    """The throttled part of a login: 200 with the account on success, 401 otherwise."""
    name, password = request.credentials
    user = authenticate(request, username=name, password=password)
    if user is None and "@" in name:
        user = authenticate(request, email=name, password=password)
    if user is None or not user.is_active:
        return json_error("wrong user name or password", 401)
    response = HttpResponse(status=200)
    response.user = user
    return response


_throttled_check = throttle_sign_in(_check_password, succeeded=lambda r: r.status_code == 200)


@api_write
@allow("POST")
def login(request: HttpRequest) -> JsonResponse:
    """POST /v1/login with HTTP Basic credentials → {"token": …}.

    A voter token sent along (X-Voter-Token) is adopted by the account, as a browser's
    voter is when it signs in.
    """
    credentials = basic_credentials(request)
    if credentials is None:
        response = json_error("send the user name and password with HTTP Basic", 401)
        response["WWW-Authenticate"] = 'Basic realm="ImageMonkey"'
        return response
    request.credentials = credentials
    request.sign_in_name = credentials[0]
    checked = _throttled_check(request)
    if checked.status_code != 200:
        return checked
    user = checked.user
    if not has_verified_email(user):
        return json_error("confirm your e-mail address first (see the mail we sent)", 403)
    if (anonymous := voter_from_token(request)) is not None:
        adoption.adopt(anonymous, user)
    _, plaintext = ApiToken.issue(
        user, ApiToken.Scope.values, "signed in through /v1/login", LOGIN_TOKEN_DAYS
    )
    return JsonResponse({"token": plaintext})


@api_write
@allow("POST")
@api_identity(scope=ANY_SCOPE)
def logout(request: HttpRequest) -> JsonResponse:
    """POST /v1/logout: the token this call is made with is revoked."""
    if request.api_token is None:
        return json_error("send the token to log out as Authorization: Bearer …", 401)
    request.api_token.revoke()
    return JsonResponse({})


@api_write
@allow("POST")
@limit("signup", "VOTER_RATE", by_address_only=True)
def signup(request: HttpRequest) -> JsonResponse:
    """POST /v1/signup {"username", "password", "email"}: a new account, which can log in
    once the e-mail address is confirmed. An address already registered answers the
    same (its owner is told by mail), so this never says who is registered."""
    try:
        body = read_json(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    fields = {name: body.get(name) for name in ("username", "password", "email")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value or not is_storable_text(value):
            return json_error(f"give {name} as a non-empty string", 400)
    form = SignupForm(
        data={
            "username": fields["username"],
            "email": fields["email"],
            "password1": fields["password"],
            "password2": fields["password"],
        }
    )
    if not form.is_valid():
        errors = {
            ("password" if name.startswith("password") else name): " ".join(messages)
            for name, messages in form.errors.items()
        }
        return json_error("; ".join(errors.values()), 400, fields=errors)
    user, _ = form.try_save(request)
    if user is not None:
        complete_signup(request, user=user, redirect_url="/")
    return JsonResponse({"status": CHECK_YOUR_MAIL}, status=201)


def _account(username: str):
    if not is_storable_text(username):
        return None
    return get_user_model().objects.filter(username__iexact=username, is_active=True).first()


@public_read
def profile(request: HttpRequest, username: str) -> JsonResponse:
    """GET /v1/user/<name>/profile: what the public profile page says."""
    user = _account(username)
    if user is None:
        return json_error("no such user", 404)
    voter = Voter.objects.filter(user=user).first() or Voter()
    numbers = public_numbers(voter)
    return JsonResponse(
        {
            "user_info": {
                "name": user.username,
                "created": int(user.date_joined.timestamp()),
                "profile_picture": "",
                "is_moderator": user.is_staff,
            },
            "statistics": {
                "validations": numbers["votes"],
                "settled_pairs_helped": numbers["settled_helped"],
                "donations": Image.objects.public().donated_by(voter).count(),
            },
        }
    )


def _own_account(request: HttpRequest, username: str) -> JsonResponse | None:
    """A refusal unless the call's API token belongs to `username`."""
    if request.api_token is None:
        return json_error("send one of your API tokens as Authorization: Bearer …", 401)
    if request.api_token.user.username.lower() != username.lower():
        return json_error("a token acts only for its own account", 403)
    return None


@api_write
@allow("POST")
@api_identity(scope=ANY_SCOPE)
def create_api_token(request: HttpRequest, username: str) -> JsonResponse:
    """POST /v1/user/<name>/api-token {"description", "scopes"?, "days"?} → {"token", …}."""
    if refused := _own_account(request, username):
        return refused
    try:
        body = read_json(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    description = body.get("description", "")
    scopes = body.get("scopes", ApiToken.Scope.values)
    days = body.get("days", None)
    if (
        not isinstance(description, str)
        or len(description) > 200
        or not is_storable_text(description)
    ):
        return json_error("description is a string of at most 200 characters", 400)
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(scope, str) and scope in ApiToken.Scope.values for scope in scopes)
    ):
        return json_error(f"scopes is a list of {', '.join(ApiToken.Scope.values)}", 400)
    # A token can make tokens only as wide as itself.
    if not set(scopes) <= set(request.api_token.scopes):
        return json_error("a token cannot make a token with scopes it does not have", 403)
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 730
    ):
        return json_error("days is a whole number from 1 to 730", 400)
    token, plaintext = ApiToken.issue(request.api_token.user, scopes, description, days)
    return JsonResponse(
        {
            "token": plaintext,
            "description": token.description,
            "scopes": token.scopes,
            "issued_at": int(token.created.timestamp()),
            "expires_at": int(token.expires.timestamp()),
        },
        status=201,
    )


@api_write
@allow("POST")
@api_identity(scope=ANY_SCOPE)
def revoke_api_token(request: HttpRequest, username: str, token: str) -> JsonResponse:
    """POST /v1/user/<name>/api-token/<token>/revoke: the token named by its secret, or by
    its shown prefix (`imk_1a2b3c4d`) — which keeps the secret out of access logs."""
    if refused := _own_account(request, username):
        return refused
    tokens = ApiToken.objects.filter(user=request.api_token.user)
    target = ApiToken.objects.presented(token)
    if target is None and token.startswith(ApiToken.MARK):
        target = tokens.filter(prefix=token[len(ApiToken.MARK) :].rstrip("…")).first()
    if target is None or target.user_id != request.api_token.user_id:
        return json_error("no such token of yours", 404)
    target.revoke()
    return JsonResponse({})
