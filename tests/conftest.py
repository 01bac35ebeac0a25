"""Test set-up: a real PostgreSQL test database, a private Redis key space and a
temporary MEDIA_ROOT; Playwright drives Debian's Chromium for browser tests."""

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.test import override_settings

from tests.media import TEST_MEDIA_BACKEND
from tests.s3 import s3_media, s3_server, s3_storages  # noqa: F401  (fixtures)

# Playwright's sync API runs an event loop in this thread; Django would
# otherwise refuse ORM calls from the test body.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


# TEST_MEDIA_BACKEND=s3 runs the suite with both image stores in a moto bucket (tests/media.py).


@pytest.fixture(scope="session", autouse=True)
def isolated_storage_and_cache(request):
    """Keep tests away from the development instance's media and Redis keys."""
    media = tempfile.mkdtemp(prefix="imagemonkey-test-media-")
    caches_conf = {
        name: {**conf, "KEY_PREFIX": f"test{os.getpid()}:{conf.get('KEY_PREFIX', '')}"}
        for name, conf in django_settings.CACHES.items()
    }
    # The live test server serves static files from the app folders (finders),
    # so tests use plain names rather than the hashed names of the manifest.
    storages = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Pages are rendered afresh for every request, as the tests of what they show expect;
    # tests/test_page_cache.py turns the anonymous page cache on where it is under test.
    media_settings = {}
    if TEST_MEDIA_BACKEND == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = server.new_bucket()
        media_settings = server.settings(bucket)
        storages = s3_storages(storages)
    with override_settings(
        MEDIA_ROOT=Path(media),
        CACHES=caches_conf,
        STORAGES=storages,
        PAGE_CACHE_SECONDS=0,
        **media_settings,
    ):
        yield
    shutil.rmtree(media, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_cache_and_media(request):
    from labels import lookup
    from people import pagecache

    # TEST_MEDIA_BACKEND=s3: the session's bucket, emptied after each test.
    bucket_server = request.getfixturevalue("s3_server") if TEST_MEDIA_BACKEND == "s3" else None
    lookup.clear()  # label ids of a rolled-back test must not outlive it
    pagecache.clear_local()  # nor the pages it cached
    for alias in django_settings.CACHES:  # nor what was cached from them (this process's keys)
        caches[alias].delete_pattern("*")
    yield
    # The database rolls back after each test; the files it wrote must go too.
    media = Path(django_settings.MEDIA_ROOT)
    for child in media.iterdir() if media.exists() else ():
        shutil.rmtree(child, ignore_errors=True)
    if bucket_server is not None:
        bucket_server.empty(django_settings.AWS_STORAGE_BUCKET_NAME)
    for name in ("default", "ratelimit"):
        # A test that stopped Redis must not fail the next one.
        with contextlib.suppress(Exception):
            caches[name].delete_pattern("*")


@pytest.fixture
def asks(monkeypatch) -> list[float]:
    """How long each request to a decoding worker took, in seconds, in order."""
    from donations import decoding

    seconds: list[float] = []
    ask = decoding._Worker.ask

    def timed(self, *args, **kwargs):
        started = time.monotonic()
        try:
            return ask(self, *args, **kwargs)
        finally:
            seconds.append(time.monotonic() - started)

    monkeypatch.setattr(decoding._Worker, "ask", timed)
    return seconds


@pytest.fixture(scope="session")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `apt-get install chromium` (make test installs it)")
    with playwright_api.sync_playwright() as playwright:
        # Playwright starts Chromium with a new, empty, temporary profile
        # (user-data dir) on every launch and removes it afterwards.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (its own cookies) pointed at the live test server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Console errors count, except the browser's own note about a failed
    # request: API calls may answer 4xx on purpose (a duplicate donation),
    # so failed requests are judged below, by kind.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} for {response.url}")
            if response.status >= 400
            and response.request.resource_type in {"stylesheet", "script", "image", "font"}
            else None
        ),
    )
    yield page
    context.close()
    assert not errors, f"the page reported errors: {errors}"


@pytest.fixture
def screenshot_dir():
    folder = Path(django_settings.BASE_DIR) / "tests" / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder
