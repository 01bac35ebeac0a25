"""What Redis holds: nothing that runs code when read back, nothing that signs anyone in.

Anyone who can reach Redis (a local user on a host where it has no password, a leaked
password) reads and writes every key. So values are JSON, never pickles, and no key or
value carries a session id.
"""

import json
import pickle
import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django_redis import get_redis_connection

from tests.helpers import make_pair, serve

pytestmark = pytest.mark.django_db


def everything_in_redis() -> list[tuple[bytes, bytes]]:
    """Every string key of the Redis the caches use, with its value."""
    connection = get_redis_connection("default")
    pairs = []
    for key in connection.scan_iter(count=1000):
        if connection.type(key) == b"string":
            pairs.append((key, connection.get(key) or b""))
    return pairs


def test_it_stores_cached_values_as_json_not_pickles():
    value = {"images": 3, "labels": ["dog", "cat"], "share": 0.5}
    cache.set("probe", value, 60)
    raw = get_redis_connection("default").get(cache.make_key("probe"))
    assert json.loads(raw) == value
    assert cache.get("probe") == value


def test_a_planted_pickle_is_never_unpickled():
    # What someone with write access would plant is a pickle whose loading runs their code;
    # a harmless one shows whether pickles are loaded at all.
    limits = caches["ratelimit"]  # it swallows no error
    get_redis_connection("ratelimit").set(
        limits.make_key("planted"), pickle.dumps({"planted": True})
    )
    with pytest.raises(ValueError):
        limits.get("planted")


def test_values_cached_by_earlier_releases_are_not_read():
    # Until this release, values were pickled, under version 1 of each key.
    get_redis_connection("default").set(
        cache.make_key("home:counts", version=1), pickle.dumps({"images": 1})
    )
    assert cache.get("home:counts") is None


def test_rate_limit_counters_still_count():
    limits = caches["ratelimit"]
    assert limits.add("counter", 0, 60)
    assert limits.incr("counter") == 1
    assert limits.incr("counter") == 2
    assert limits.get("counter") == 2


def test_cached_pages_read_back_what_they_cached(client):
    make_pair("dog")
    for _ in range(2):  # the second time from the cache
        assert client.get("/").status_code == 200
        statistics = client.get("/statistics")
        assert statistics.status_code == 200
        assert "dog" in statistics.content.decode()
    assert cache.get("statistics:site")["totals"]["pairs"] >= 1


def test_no_session_id_reaches_redis_after_a_login_and_a_vote(client):
    get_user_model().objects.create_superuser("curator", "curator@example.org", "pw-12345678")
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    signed_in = client.post(
        "/admin/login/?next=/admin/",
        {"username": "curator", "password": "pw-12345678", "csrfmiddlewaretoken": token},
    )
    assert signed_in.status_code == 302
    admin_session = client.cookies[settings.SESSION_COOKIE_NAME].value

    visitor = type(client)()
    pair = make_pair("dog")
    serve(pair)
    page = visitor.get("/validate").content.decode()
    ticket = re.search(r'name="ticket" value="([^"]+)"', page)[1]
    voted = visitor.post(f"/validate/{pair.pk}/vote", {"answer": "yes", "ticket": ticket})
    assert voted.status_code == 302
    visitor_session = visitor.cookies[settings.SESSION_COOKIE_NAME].value

    stored = everything_in_redis()
    assert stored, "the site keeps nothing in Redis? then this test proves nothing"
    for session in (admin_session, visitor_session):
        assert len(session) >= 32
        for key, value in stored:
            assert session.encode() not in key, key
            assert session.encode() not in value, key
