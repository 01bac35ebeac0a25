"""The anonymous page cache: public pages for visitors without a session come from Redis,
and nothing personal is ever stored or handed to another visitor."""

import re

import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.core.cache import cache
from django.db import transaction
from django.middleware.csrf import _unmask_cipher_token
from django.test import Client, override_settings

from people.pagecache import HIT_HEADER, SHARED_CACHE_HEADER, clear_local, csrf_placeholder
from tests.helpers import make_image, make_label, make_pair

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("page_cache_on")]

CACHED_PAGES = ("/", "/browse", "/labels", "/statistics")


@pytest.fixture
def page_cache_on():
    with override_settings(PAGE_CACHE_SECONDS=30):
        yield


@pytest.fixture
def picture():
    image = make_image()
    make_pair(make_label("dog"), image)
    return image


def stored_pages() -> dict[str, dict]:
    # The tests' KEY_PREFIX holds a colon, which django-redis's keys() does not strip.
    keys = [key[key.index("page:") :] for key in cache.keys("*page:*")]
    return {key: cache.get(key) for key in keys}


def form_token(response) -> str:
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)[1].decode()


def test_an_anonymous_page_is_rendered_once_and_then_served_without_a_query(
    client, picture, django_assert_num_queries
):
    for path in (*CACHED_PAGES, f"/image/{picture.uuid}"):
        first = client.get(path)
        assert first.status_code == 200, path
        assert first[HIT_HEADER] == "miss", path
        with django_assert_num_queries(0):
            again = Client().get(path)
        assert again[HIT_HEADER] == "hit", path
        clear_local()  # another app host: the page comes from Redis
        with django_assert_num_queries(0):
            elsewhere = Client().get(path)
        assert elsewhere[HIT_HEADER] == "hit", path
        assert again.content == first.content or b"csrfmiddlewaretoken" in first.content


def test_a_new_picture_shows_once_the_cached_page_expires(client, picture):
    assert client.get("/browse").status_code == 200
    newer = make_image()
    assert str(newer.uuid) not in client.get("/browse").content.decode()
    cache.delete_pattern("*page:*")  # what PAGE_CACHE_SECONDS does, without the wait
    clear_local()
    assert str(newer.uuid) in client.get("/browse").content.decode()


def test_a_cached_page_with_forms_gives_each_visitor_a_csrf_token_of_their_own(picture):
    path = f"/image/{picture.uuid}"
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    page_one, page_two = first.get(path), second.get(path)
    assert (page_one[HIT_HEADER], page_two[HIT_HEADER]) == ("miss", "hit")
    secrets = []
    for visitor, page in ((first, page_one), (second, page_two)):
        cookie = visitor.cookies[settings.CSRF_COOKIE_NAME].value
        secret = _unmask_cipher_token(form_token(page))
        assert secret == cookie  # bound to this visitor's own cookie
        secrets.append(secret)
    assert secrets[0] != secrets[1]
    # The stored page holds the placeholder, never a visitor's token, and no cookie.
    (stored,) = stored_pages().values()
    assert set(stored["headers"]) == {"Content-Type"}
    from people.pagecache import _response

    body = _response(stored).content
    assert csrf_placeholder().encode() in body
    for secret in secrets:
        assert secret.encode() not in body
    assert form_token(page_one).encode() not in body
    # Either visitor's form is accepted with their own token, as without the cache.
    answer = second.post(
        f"{path}/report", {"reason": "sensitive", "csrfmiddlewaretoken": form_token(page_two)}
    )
    assert answer.status_code == 302


def test_a_cached_page_without_forms_sets_no_cookie(client):
    assert client.get("/browse")[HIT_HEADER] == "miss"
    hit = Client().get("/browse")
    assert hit[HIT_HEADER] == "hit"
    assert not hit.cookies
    assert "Cookie" in hit["Vary"]


def test_a_page_the_same_for_everyone_tells_nginx_to_keep_it_only_for_its_lifetime(client):
    missed = client.get("/browse")
    assert missed[HIT_HEADER] == "miss"
    assert 29 <= int(missed[SHARED_CACHE_HEADER]) <= 30  # PAGE_CACHE_SECONDS, here 30
    (stored,) = stored_pages().values()
    stored["until"] -= 20  # the stored page is 20 s old
    cache.set(next(iter(stored_pages())), stored)
    clear_local()
    hit = Client().get("/browse")
    assert hit[HIT_HEADER] == "hit"
    assert 9 <= int(hit[SHARED_CACHE_HEADER]) <= 10  # what is left of its 30 s, no more


def test_a_page_with_a_form_is_never_offered_to_nginx(picture):
    path = f"/image/{picture.uuid}"
    missed, hit = Client().get(path), Client().get(path)
    assert (missed[HIT_HEADER], hit[HIT_HEADER]) == ("miss", "hit")
    assert SHARED_CACHE_HEADER not in missed and SHARED_CACHE_HEADER not in hit


def test_no_personal_or_unstored_page_is_offered_to_nginx(client, picture, django_user_model):
    assert SHARED_CACHE_HEADER in client.get("/browse")
    user = django_user_model.objects.create_user("ada", password="a long passphrase 42")
    signed_in = Client()
    signed_in.force_login(user)
    assert SHARED_CACHE_HEADER not in signed_in.get("/browse")
    assert SHARED_CACHE_HEADER not in client.get("/", HTTP_X_VOTER_TOKEN="anything")
    assert SHARED_CACHE_HEADER not in client.get("/browse?label=dog&junk=1")
    missing = client.get("/image/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and SHARED_CACHE_HEADER not in missing
    with override_settings(PAGE_CACHE_SECONDS=0):
        assert SHARED_CACHE_HEADER not in client.get("/labels")
    assert SHARED_CACHE_HEADER not in client.get("/ping")  # not a cached page at all


def test_a_signed_in_visitor_gets_their_own_page_not_the_cached_one(
    client, picture, django_user_model
):
    assert client.get("/browse")[HIT_HEADER] == "miss"
    user = django_user_model.objects.create_user("ada", password="a long passphrase 42")
    signed_in = Client()
    signed_in.force_login(user)
    response = signed_in.get("/browse")
    assert HIT_HEADER not in response
    assert "Cookie" in response["Vary"]
    assert len(stored_pages()) == 1  # and nothing was stored for them


def test_a_visitor_sees_their_own_message_after_a_post_not_the_cached_page(picture):
    path = f"/image/{picture.uuid}"
    assert Client().get(path)[HIT_HEADER] == "miss"
    assert Client().get(path)[HIT_HEADER] == "hit"
    reporter = Client(REMOTE_ADDR="198.51.100.7")
    answer = reporter.post(f"{path}/report", {"reason": "sensitive"}, follow=True)
    assert answer.status_code == 200
    messages = list(answer.context["messages"])
    assert [message.level for message in messages] == [constants.SUCCESS]
    assert b"Thank you. A moderator will look at this picture." in answer.content
    assert HIT_HEADER not in answer
    # Nobody else is shown that message.
    other = Client().get(path)
    assert other[HIT_HEADER] == "hit"
    assert b"Thank you" not in other.content


def test_a_visitor_who_just_wrote_reads_fresh_pages_for_a_few_seconds(picture):
    path = f"/image/{picture.uuid}"
    assert Client().get(path)[HIT_HEADER] == "miss"
    voter = Client()
    voter.post(f"{path}/report", {"reason": "sensitive"})
    assert voter.cookies["wrote"]["max-age"] == 10
    assert HIT_HEADER not in voter.get(path)
    assert Client().get(path)[HIT_HEADER] == "hit"  # others still get the cached page


def test_a_forged_recent_write_cookie_only_skips_the_cache(client):
    assert client.get("/browse")[HIT_HEADER] == "miss"
    forger = Client()
    forger.cookies["wrote"] = "1"
    assert HIT_HEADER not in forger.get("/browse")


def test_query_parameters_the_page_does_not_read_bypass_the_cache(client):
    assert client.get("/browse?label=dog")[HIT_HEADER] == "miss"
    assert client.get("/browse?label=dog")[HIT_HEADER] == "hit"
    assert HIT_HEADER not in client.get("/browse?label=dog&junk=1")
    assert HIT_HEADER not in client.get(f"/browse?label={'x' * 300}")
    assert HIT_HEADER not in client.get("/", HTTP_X_VOTER_TOKEN="anything")
    assert HIT_HEADER not in client.get("/", HTTP_X_API_TOKEN="anything")
    assert HIT_HEADER not in client.get("/", HTTP_AUTHORIZATION="Bearer anything")
    assert len(stored_pages()) == 1


def test_a_missing_page_is_not_stored(client):
    assert client.get("/image/00000000-0000-0000-0000-000000000000").status_code == 404
    assert stored_pages() == {}


def test_with_no_lifetime_nothing_is_cached(client):
    with override_settings(PAGE_CACHE_SECONDS=0):
        assert HIT_HEADER not in client.get("/browse")
        assert HIT_HEADER not in client.get("/browse")
    assert stored_pages() == {}


def test_a_hidden_picture_leaves_the_cache_at_once(picture, django_capture_on_commit_callbacks):
    path = f"/image/{picture.uuid}"
    assert Client().get(path)[HIT_HEADER] == "miss"
    assert Client().get(path)[HIT_HEADER] == "hit"
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        picture.decide("hide")
    assert Client().get(path).status_code == 404
