"""Signing in to the admin: failed attempts are throttled per address and per user name."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db

URL = "/admin/login/"
PASSWORD = "a long enough password"


@pytest.fixture
def admin_user(settings):
    settings.LOGIN_FAILURE_RATE = "3/h"
    return User.objects.create_superuser("boss", "b@example.org", PASSWORD)


def sign_in(password: str, address: str = "198.51.100.1", username: str = "boss"):
    return Client().post(URL, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_failed_sign_ins_from_one_address_are_refused_before_any_password_is_checked(
    admin_user,
):
    codes = [sign_in(f"guess{n}", username=f"user{n}").status_code for n in range(3)]
    assert codes == [200, 200, 200]
    refused = sign_in(PASSWORD)
    assert refused.status_code == 429 and refused["Retry-After"]
    assert sign_in(PASSWORD, address="203.0.113.1").status_code == 302


def test_failed_sign_ins_for_one_name_from_many_addresses_are_refused(admin_user):
    for n in range(3):
        assert sign_in(f"guess{n}", address=f"192.0.2.{n}").status_code == 200
    assert sign_in(PASSWORD, address="203.0.113.7").status_code == 429
    assert sign_in("x", address="203.0.113.8", username="someone").status_code == 200


def test_successful_sign_ins_do_not_count(admin_user):
    codes = {sign_in(PASSWORD).status_code for _ in range(5)}
    assert codes == {302}


def test_a_throttled_sign_in_is_logged_with_the_client_address_not_the_proxy(
    admin_user, settings, caplog
):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"  # behind nginx
    for n in range(4):
        Client().post(
            URL,
            {"username": "boss", "password": f"guess{n}"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_REAL_IP="198.51.100.44",
        )
    assert "sign-in throttled for 198.51.100.44" in caplog.text
