"""Accounts: sign-up and sign-in with allauth, adopting the browser's voter, the profile,
the settings page, deleting an account."""

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from donations.models import Image
from people.identity import SESSION_KEY
from people.models import ApiToken, Voter
from tests.helpers import make_image, make_pair, make_voter, serve, vote
from validation import adoption
from validation.models import Vote

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough password 42"


def member(name: str = "ada", email: str | None = None, **fields) -> User:
    user = User.objects.create_user(name, email or f"{name}@example.org", PASSWORD, **fields)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def browser_with_voter(**fields) -> tuple[Client, Voter]:
    """A browser whose session holds an anonymous voter (as after a first vote)."""
    client = Client()
    voter = make_voter(**fields)
    session = client.session
    session[SESSION_KEY] = voter.pk
    session.save()
    return client, voter


def sign_in(client: Client, login: str, password: str = PASSWORD, **extra):
    return client.post("/accounts/login/", {"login": login, "password": password}, **extra)


# --- sign-up, sign-in, enumeration ----------------------------------------------------


def test_signing_up_sends_a_verification_mail_and_the_account_signs_in_only_once_verified(
    client,
):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new@example.org",
            "username": "newbie",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert "/accounts/confirm-email/" in response["Location"]
    assert len(mail.outbox) == 1
    assert sign_in(Client(), "newbie").status_code == 302  # to "verify your e-mail first"
    assert "_auth_user_id" not in Client().session
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    key_url = link.group(0).split("://", 1)[1].split("/", 1)[1]
    confirmed = client.post("/" + key_url)
    assert confirmed.status_code == 302
    assert EmailAddress.objects.get(email="new@example.org").verified
    assert client.get("/settings").status_code == 200


def test_a_weak_password_is_refused_in_plain_words(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "w@example.org",
            "username": "weak",
            "password1": "12345678",
            "password2": "12345678",
        },
    )
    assert response.status_code == 200
    assert (
        "too common" in response.content.decode() or "entirely numeric" in response.content.decode()
    )
    assert not User.objects.filter(username="weak").exists()


def test_signing_up_with_a_registered_address_answers_as_for_a_new_one(client):
    member("taken", "taken@example.org")
    fresh = client.post(
        "/accounts/signup/",
        {
            "email": "free@example.org",
            "username": "free1",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    again = Client().post(
        "/accounts/signup/",
        {
            "email": "taken@example.org",
            "username": "free2",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert (fresh.status_code, fresh["Location"]) == (again.status_code, again["Location"])
    # The owner of the address is told by mail, not the person at the form.
    assert any("taken@example.org" in message.to for message in mail.outbox)


def test_a_password_reset_answers_alike_for_registered_and_unknown_addresses(client):
    member("known", "known@example.org")
    known = client.post("/accounts/password/reset/", {"email": "known@example.org"})
    unknown = Client().post("/accounts/password/reset/", {"email": "nobody@example.org"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])


def test_password_resets_are_limited_per_address_asked_for(settings):
    settings.PASSWORD_RESET_RATE = "2/h"
    for n in range(2):
        response = Client(REMOTE_ADDR=f"192.0.2.{n}").post(
            "/accounts/password/reset/", {"email": "victim@example.org"}
        )
        assert response.status_code == 302
    refused = Client(REMOTE_ADDR="192.0.2.9").post(
        "/accounts/password/reset/", {"email": "victim@example.org"}
    )
    assert refused.status_code == 429


def test_failed_sign_ins_are_limited_per_account_from_many_addresses(settings):
    settings.LOGIN_FAILURE_RATE = "3/h"
    member("ada")
    for n in range(3):
        assert sign_in(Client(REMOTE_ADDR=f"192.0.2.{n}"), "ada", "wrong").status_code == 200
    assert sign_in(Client(REMOTE_ADDR="203.0.113.1"), "ada").status_code == 429


# --- adopting the browser's voter -------------------------------------------------------


def test_signing_in_adopts_the_browsers_votes_gold_record_trust_and_donations(client):
    user = member("ada")
    browser, voter = browser_with_voter(
        trusted=True, gold_correct=3, gold_by_label={"label:1": [3, 0]}
    )
    pair = serve(make_pair("dog"))
    vote(pair, voter, Vote.Answer.YES)
    image = make_image(status=Image.Status.PENDING, donor=voter)
    assert sign_in(browser, "ada").status_code == 302
    voter.refresh_from_db()
    assert voter.user == user and voter.trusted and voter.gold_correct == 3
    assert Vote.objects.get().voter == voter
    image.refresh_from_db()
    assert image.donor == voter


def test_a_second_device_merges_its_voter_keeping_the_later_answer_on_a_pair_both_voted(client):
    user = member("ada")
    first, laptop = browser_with_voter(trusted=True, gold_correct=2, gold_wrong=0)
    assert sign_in(first, "ada").status_code == 302
    laptop.refresh_from_db()
    assert laptop.user == user
    both = serve(make_pair("dog"))
    only_phone = serve(make_pair("cat"))
    vote(both, laptop, Vote.Answer.YES)
    second, phone = browser_with_voter(gold_correct=2, gold_wrong=0)
    vote(both, phone, Vote.Answer.NO)  # later than the laptop's yes
    vote(only_phone, phone, Vote.Answer.YES)
    phone_donation = make_image(status=Image.Status.PENDING, donor=phone)
    assert sign_in(second, "ada").status_code == 302

    account = Voter.objects.get(user=user)
    assert account == laptop and not Voter.objects.filter(pk=phone.pk).exists()
    assert Vote.objects.filter(pair=both).count() == 1, "one vote per pair still holds"
    assert Vote.objects.get(pair=both).answer == Vote.Answer.NO, "the later answer is kept"
    assert Vote.objects.get(pair=only_phone).voter == account
    assert (account.gold_correct, account.gold_wrong) == (4, 0)
    phone_donation.refresh_from_db()
    assert phone_donation.donor == account
    both.refresh_from_db()
    # Recounted through the voting rules: the account is trusted, so its one answer counts.
    assert (both.num_yes, both.num_no) == (0, 1)


def test_a_merge_drops_votes_on_the_accounts_own_donations():
    user = member("ada")
    account = make_voter(user=user, trusted=True, gold_correct=3)
    own = serve(make_pair("dog", image=make_image(donor=account)))
    device = make_voter(trusted=True, gold_correct=3)
    vote(own, device, Vote.Answer.YES)
    adoption.adopt(device, user)
    assert not Vote.objects.filter(pair=own).exists()
    own.refresh_from_db()
    assert own.num_yes == 0


def test_signing_in_never_takes_another_accounts_voter():
    owner = member("owner")
    theirs = make_voter(user=owner, trusted=True)
    intruder = member("intruder")
    assert adoption.adopt(theirs, intruder) is None
    theirs.refresh_from_db()
    assert theirs.user == owner


# --- profile, settings, deletion ---------------------------------------------------------


def test_the_public_profile_shows_numbers_and_public_donations_but_no_answers(client):
    user = member("ada")
    voter = make_voter(user=user, trusted=True, gold_correct=3)
    public = make_image(donor=voter)
    make_image(status=Image.Status.PENDING, donor=voter)
    vote(serve(make_pair("zebra")), voter, Vote.Answer.YES)
    page = client.get("/people/ada")
    assert page.status_code == 200
    text = page.content.decode()
    assert "<h1>ada</h1>" in text and "member since" in text
    assert public.thumb_url in text and text.count('alt="Donated picture') == 1
    assert "zebra" not in text, "never which answer on what"
    assert client.get("/people/nobody").status_code == 404


def test_settings_need_a_signed_in_account(client):
    response = client.get("/settings")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_token_made_in_settings_is_shown_once_and_stored_hashed(client):
    user = member("ada")
    client.force_login(user)
    response = client.post(
        "/settings/tokens", {"description": "bulk upload", "days": 30, "scopes": ["donate", "read"]}
    )
    assert response.status_code == 201
    plaintext = re.search(r'id="new-token">([^<]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert token.scopes == ["donate", "read"] and token.description == "bulk upload"
    assert plaintext not in str(ApiToken.objects.values().get())
    assert token.secret_sha256 == ApiToken.hash_secret(plaintext)
    assert abs(token.expires - timezone.now() - timedelta(days=30)) < timedelta(minutes=1)
    listing = client.get("/settings").content.decode()
    assert plaintext not in listing and token.shown in listing


def test_a_token_without_a_scope_is_refused_in_plain_words(client):
    client.force_login(member("ada"))
    response = client.post("/settings/tokens", {"description": "x", "days": 30})
    assert response.status_code == 400
    assert "Choose at least one" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_a_token_from_settings(client):
    user = member("ada")
    token, _ = ApiToken.issue(user, ["read"])
    client.force_login(user)
    assert client.post(f"/settings/tokens/{token.pk}/revoke").status_code == 302
    token.refresh_from_db()
    assert token.revoked is not None
    stranger = Client()
    stranger.force_login(member("eve"))
    assert stranger.post(f"/settings/tokens/{token.pk}/revoke").status_code == 404


def test_deleting_an_account_keeps_its_votes_anonymous_and_its_donations_public(client):
    user = member("ada")
    voter = make_voter(user=user, trusted=True, gold_correct=3)
    image = make_image(donor=voter)
    pair = serve(make_pair("dog"))
    vote(pair, voter, Vote.Answer.YES)
    ApiToken.issue(user, ["read"])
    client.force_login(user)
    wrong = client.post("/settings/delete", {"password": "not it"})
    assert wrong.status_code == 400 and User.objects.filter(pk=user.pk).exists()
    assert client.post("/settings/delete", {"password": PASSWORD}).status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert not EmailAddress.objects.filter(email="ada@example.org").exists()
    assert not ApiToken.objects.exists()
    voter.refresh_from_db()
    assert voter.user is None and Vote.objects.filter(voter=voter).count() == 1
    image.refresh_from_db()
    assert image.donor == voter and image.status == Image.Status.PUBLIC
    assert client.get("/settings").status_code == 302, "signed out"


# --- e-mail settings ---------------------------------------------------------------------


def test_email_url_configures_the_smtp_backend(monkeypatch):
    from imagemonkey.settings import _email_settings

    monkeypatch.setenv("EMAIL_URL", "smtp://mailer:p%40ss@mail.example.org:2525")
    smtp = _email_settings()
    assert smtp["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"]) == ("mail.example.org", 2525)
    assert (smtp["EMAIL_HOST_USER"], smtp["EMAIL_HOST_PASSWORD"]) == ("mailer", "p@ss")
    assert smtp["EMAIL_USE_TLS"] and not smtp["EMAIL_USE_SSL"]
    monkeypatch.setenv("EMAIL_URL", "smtps://mail.example.org")
    assert (_email_settings()["EMAIL_PORT"], _email_settings()["EMAIL_USE_SSL"]) == (465, True)
    monkeypatch.setenv("EMAIL_URL", "console:")
    assert _email_settings()["EMAIL_BACKEND"].endswith("console.EmailBackend")


def test_email_host_variables_configure_the_smtp_backend_without_a_url(monkeypatch):
    from imagemonkey.settings import _email_settings

    monkeypatch.delenv("EMAIL_URL", raising=False)
    monkeypatch.setenv("EMAIL_HOST", "relay.example.org")
    monkeypatch.setenv("EMAIL_PORT", "587")
    monkeypatch.setenv("EMAIL_USE_TLS", "1")
    smtp = _email_settings()
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"], smtp["EMAIL_USE_TLS"]) == (
        "relay.example.org",
        587,
        True,
    )


def test_a_wrong_email_url_stops_the_site_with_the_reason(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from imagemonkey.settings import _email_settings

    monkeypatch.setenv("EMAIL_URL", "http://mail.example.org")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
        _email_settings()
    monkeypatch.setenv("EMAIL_URL", "smtp://mail.example.org:port")
    with pytest.raises(ImproperlyConfigured, match="port"):
        _email_settings()


def test_a_discarded_voter_is_never_adopted():
    user = member("ada")
    browser, banned = browser_with_voter(banned=True, gold_correct=9)
    assert sign_in(browser, "ada").status_code == 302
    banned.refresh_from_db()
    assert banned.user is None
    assert not Voter.objects.filter(user=user, banned=True).exists()


def test_signing_up_alone_adopts_nothing_until_the_address_is_confirmed(client):
    browser, voter = browser_with_voter(trusted=True, gold_correct=3)
    browser.post(
        "/accounts/signup/",
        {
            "email": "v@example.org",
            "username": "squatter",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    voter.refresh_from_db()
    assert voter.user is None, "nobody has proven the address yet"


def test_a_gold_pair_both_devices_answered_counts_once_in_the_merged_record():
    user = member("ada")
    account = make_voter(user=user)
    device = make_voter()
    gold = serve(make_pair("dog", is_gold=True, gold_answer=True))
    vote(gold, account, Vote.Answer.YES)
    vote(gold, device, Vote.Answer.YES)
    account.refresh_from_db()
    device.refresh_from_db()
    assert account.gold_correct == device.gold_correct == 1
    adoption.adopt(device, user)
    account.refresh_from_db()
    assert account.gold_correct == 1 and account.gold_by_label[f"label:{gold.label_id}"] == [1, 0]
    assert Vote.objects.filter(pair=gold).count() == 1
