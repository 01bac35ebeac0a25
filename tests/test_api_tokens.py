"""API tokens: hashed, scoped, expiring, revocable; the original's login, logout, signup,
profile and token endpoints; and no token in any log line."""

import base64
import logging
import runpy
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from people.models import ApiToken, Voter
from tests.helpers import make_pair, make_voter, serve

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough password 42"


def member(name: str = "ada", verified: bool = True, **fields) -> User:
    user = User.objects.create_user(name, f"{name}@example.org", PASSWORD, **fields)
    EmailAddress.objects.create(user=user, email=user.email, verified=verified, primary=True)
    return user


def bearer(plaintext: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def basic(name: str, password: str) -> dict:
    encoded = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {encoded}"}


def vote_on(pair, headers: dict, **extra):
    return Client(**extra).post(
        f"/v1/donation/{pair.image.uuid}/validate/yes",
        {"label": pair.label.name},
        content_type="application/json",
        **headers,
    )


# --- the token itself ------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_sha256_and_found_by_its_prefix():
    token, plaintext = ApiToken.issue(member(), ["read"])
    assert plaintext.startswith(f"imk_{token.prefix}_") and len(plaintext) > 40
    row = ApiToken.objects.values().get()
    assert plaintext not in str(row)
    assert row["secret_sha256"] == ApiToken.hash_secret(plaintext)
    assert ApiToken.objects.presented(plaintext) == token
    assert ApiToken.objects.presented(plaintext[:-1] + "x") is None, "the whole secret counts"
    assert ApiToken.objects.presented(f"imk_{token.prefix}_") is None


def test_a_token_acts_as_its_accounts_voter_in_each_of_the_three_headers():
    user = member()
    make_voter(user=user, trusted=True, gold_correct=5)
    _, plaintext = ApiToken.issue(user, ["read"])
    for headers in (
        bearer(plaintext),
        {"HTTP_X_API_TOKEN": plaintext},
        {"HTTP_X_VOTER_TOKEN": plaintext},
    ):
        response = Client().get("/v1/me", **headers)
        assert response.status_code == 200, response.content
        assert response.json()["trusted"] is True


def test_an_out_of_scope_token_gets_403_with_the_reason():
    _, plaintext = ApiToken.issue(member(), ["read"])
    pair = serve(make_pair("dog"))
    response = vote_on(pair, bearer(plaintext))
    assert response.status_code == 403
    assert response.json()["scope"] == "vote" and "read" in response.json()["error"]
    assert not Voter.objects.exists(), "a refused call creates no one"


def test_an_expired_token_gets_401_with_the_reason():
    token, plaintext = ApiToken.issue(member(), ["read"], days=1)
    ApiToken.objects.filter(pk=token.pk).update(
        created=timezone.now() - timedelta(days=3), expires=timezone.now() - timedelta(days=2)
    )
    response = Client().get("/v1/me", **bearer(plaintext))
    assert response.status_code == 401 and "expired" in response.json()["error"]


def test_a_revoked_token_gets_401_with_the_reason():
    token, plaintext = ApiToken.issue(member(), ["read"])
    token.revoke()
    response = Client().get("/v1/me", **bearer(plaintext))
    assert response.status_code == 401 and "revoked" in response.json()["error"]


def test_an_unknown_api_token_gets_401():
    response = Client().get("/v1/me", HTTP_X_API_TOKEN="imk_00000000_nothing")
    assert response.status_code == 401 and response.json()["error"] == "unknown API token"


def test_anonymous_voter_tokens_keep_working():
    voter, token = Voter.create_with_token(trusted=True, gold_correct=3)
    response = Client().get("/v1/me", HTTP_X_VOTER_TOKEN=token)
    assert response.status_code == 200 and response.json()["trusted"] is True


def test_a_get_with_a_token_writes_no_row_and_its_use_still_shows_in_settings():
    user = member()
    token, plaintext = ApiToken.issue(user, ["read"])
    with CaptureQueriesContext(connection) as queries:
        assert Client().get("/v1/me", **bearer(plaintext)).status_code == 200
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    token.refresh_from_db()
    assert token.last_used is None
    (seen,) = ApiToken.with_last_seen([token])
    assert seen.last_seen is not None and timezone.now() - seen.last_seen < timedelta(minutes=1)


def test_a_write_with_a_token_stores_its_last_use_at_most_once_a_minute():
    user = member()
    make_voter(user=user)
    token, plaintext = ApiToken.issue(user, ["vote"])
    pair = serve(make_pair("dog"))
    vote_on(pair, bearer(plaintext))
    token.refresh_from_db()
    first = token.last_used
    assert first is not None
    vote_on(pair, bearer(plaintext))
    token.refresh_from_db()
    assert token.last_used == first


def test_rate_limits_count_per_account_across_its_tokens_and_addresses(settings):
    settings.VOTE_RATE = "1/m"
    user = member()
    _, one = ApiToken.issue(user, ["vote"])
    _, two = ApiToken.issue(user, ["vote"])
    pair = serve(make_pair("dog"))
    assert vote_on(pair, bearer(one), REMOTE_ADDR="192.0.2.1").status_code == 403  # no ticket
    assert vote_on(pair, bearer(two), REMOTE_ADDR="203.0.113.1").status_code == 429


def test_a_token_never_appears_in_the_logs(caplog):
    user = member()
    token, plaintext = ApiToken.issue(user, ["read"])
    _, voter_token = Voter.create_with_token()
    caplog.set_level(logging.DEBUG)
    Client().get("/v1/me", **bearer(plaintext))
    Client().post("/v1/donate", **bearer(plaintext))  # out of scope: a 403 logged
    Client().post("/v1/logout", HTTP_X_API_TOKEN=plaintext)
    Client().get("/v1/me", HTTP_X_API_TOKEN=plaintext)  # revoked now: a 401 logged
    Client().get("/v1/me", HTTP_X_VOTER_TOKEN=voter_token)
    Client().post("/v1/login", **basic("ada", "wrong password"))
    assert caplog.records, "the requests were logged"
    for record in caplog.records:
        text = record.getMessage() + " " + str(record.__dict__)
        for secret in (plaintext, plaintext[len("imk_") + 9 :], voter_token, "wrong password"):
            assert secret not in text, f"{record.name} logged a credential"
    # gunicorn's access log: no header and no HTTP Basic user name in its lines.
    conf = runpy.run_path(str(Path(__file__).parent.parent / "deploy" / "gunicorn.conf.py"))
    line_format = conf["access_log_format"]
    assert "%(u)s" not in line_format and "}i" not in line_format


# --- the original API's account endpoints -------------------------------------------------


def test_login_with_http_basic_answers_a_token_with_every_scope():
    user = member()
    response = Client().post("/v1/login", **basic("ada", PASSWORD))
    assert response.status_code == 200
    token = ApiToken.objects.presented(response.json()["token"])
    assert token.user == user and sorted(token.scopes) == sorted(ApiToken.Scope.values)
    assert token.expires - token.created == timedelta(days=7)
    assert Client().get("/v1/me", **bearer(response.json()["token"])).status_code == 200


def test_login_refuses_a_wrong_password_and_an_unconfirmed_address():
    member()
    assert Client().post("/v1/login", **basic("ada", "nope")).status_code == 401
    assert Client().post("/v1/login").status_code == 401
    member("bob", verified=False)
    unconfirmed = Client().post("/v1/login", **basic("bob", PASSWORD))
    assert unconfirmed.status_code == 403 and "confirm" in unconfirmed.json()["error"]
    assert not ApiToken.objects.exists()


def test_failed_logins_are_throttled_per_account(settings):
    settings.LOGIN_FAILURE_RATE = "2/h"
    member()
    for n in range(2):
        failed = Client(REMOTE_ADDR=f"192.0.2.{n}").post("/v1/login", **basic("ada", "x"))
        assert failed.status_code == 401
    refused = Client(REMOTE_ADDR="203.0.113.4").post("/v1/login", **basic("ada", PASSWORD))
    assert refused.status_code == 429


def test_login_adopts_the_anonymous_voter_token_sent_along():
    user = member()
    voter, voter_token = Voter.create_with_token(trusted=True, gold_correct=3)
    response = Client().post("/v1/login", HTTP_X_VOTER_TOKEN=voter_token, **basic("ada", PASSWORD))
    assert response.status_code == 200
    voter.refresh_from_db()
    assert voter.user == user and voter.trusted


def test_logout_revokes_the_token_it_is_sent_with():
    _, plaintext = ApiToken.issue(member(), ["donate"])
    assert Client().post("/v1/logout", **bearer(plaintext)).status_code == 200
    assert Client().post("/v1/logout", **bearer(plaintext)).status_code == 401
    assert Client().post("/v1/logout").status_code == 401


def test_signup_answers_alike_for_a_new_and_a_registered_address():
    member("taken")
    new = Client().post(
        "/v1/signup",
        {"username": "newbie", "password": PASSWORD, "email": "new@example.org"},
        content_type="application/json",
    )
    again = Client().post(
        "/v1/signup",
        {"username": "other", "password": PASSWORD, "email": "taken@example.org"},
        content_type="application/json",
    )
    assert new.status_code == again.status_code == 201
    assert new.json() == again.json()
    assert User.objects.filter(username="newbie").exists()
    assert not User.objects.filter(username="other").exists()
    assert {tuple(message.to) for message in mail.outbox} == {
        ("new@example.org",),
        ("taken@example.org",),
    }


def test_signup_refuses_a_weak_password_and_bad_fields_with_reasons():
    weak = Client().post(
        "/v1/signup",
        {"username": "weak", "password": "123456789", "email": "w@example.org"},
        content_type="application/json",
    )
    assert weak.status_code == 400 and "password" in weak.json()["fields"]
    missing = Client().post("/v1/signup", {"username": "x"}, content_type="application/json")
    assert missing.status_code == 400 and "password" in missing.json()["error"]
    assert not User.objects.exists()


def test_the_profile_in_the_original_shape_tells_no_answer():
    user = member()
    make_voter(user=user)
    body = Client().get("/v1/user/ada/profile").json()
    assert body["user_info"]["name"] == "ada" and body["user_info"]["is_moderator"] is False
    assert set(body["statistics"]) == {"validations", "settled_pairs_helped", "donations"}
    assert Client().get("/v1/user/nobody/profile").status_code == 404


def test_a_token_makes_and_revokes_tokens_of_its_own_account_only():
    user = member()
    _, plaintext = ApiToken.issue(user, ["read", "donate"])
    made = Client().post(
        "/v1/user/ada/api-token",
        {"description": "uploader", "scopes": ["donate"]},
        content_type="application/json",
        **bearer(plaintext),
    )
    assert made.status_code == 201 and made.json()["scopes"] == ["donate"]
    wider = Client().post(
        "/v1/user/ada/api-token",
        {"scopes": ["vote"]},
        content_type="application/json",
        **bearer(plaintext),
    )
    assert wider.status_code == 403
    member("eve")
    assert (
        Client()
        .post("/v1/user/eve/api-token", {}, content_type="application/json", **bearer(plaintext))
        .status_code
        == 403
    )
    new = ApiToken.objects.presented(made.json()["token"])
    revoked = Client().post(
        f"/v1/user/ada/api-token/{new.shown.rstrip('…')}/revoke", **bearer(plaintext)
    )
    assert revoked.status_code == 200
    new.refresh_from_db()
    assert new.revoked is not None
