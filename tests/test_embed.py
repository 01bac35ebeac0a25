"""/verify, the one question the original's browser extensions frame, and who may frame it."""

import functools
import http.server
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured

from imagemonkey.settings import env_origins
from tests.helpers import make_image, make_pair, real_public_image, serve
from validation.models import Vote

EMBED = "/verify?show_header=false&show_footer=false&only_once=true&callback=true"


def frame_ancestors(response) -> str:
    policy = response["Content-Security-Policy"]
    return next(part.strip() for part in policy.split(";") if "frame-ancestors" in part)


@pytest.mark.django_db
class TestThePage:
    def test_it_shows_one_question_without_header_and_footer(self, client):
        serve(make_pair("dog", make_image()))
        body = client.get(EMBED).content.decode()
        assert "Is there a dog in this picture?" in body
        assert "site-header" not in body and "site-footer" not in body
        plain = client.get("/verify").content.decode()
        assert "site-header" in plain and "site-footer" in plain

    def test_a_flag_that_is_not_true_or_false_is_400(self, client):
        response = client.get("/verify?only_once=perhaps")
        assert response.status_code == 400 and b"only_once is true or false" in response.content

    def test_with_nothing_to_answer_it_says_so(self, client):
        assert b"Nothing to validate" in client.get(EMBED).content

    def test_by_default_nobody_may_frame_it(self, client, settings):
        settings.EMBED_ALLOWED_ORIGINS = []
        response = client.get(EMBED)
        assert frame_ancestors(response) == "frame-ancestors 'none'"
        assert response["X-Frame-Options"] == "DENY"

    def test_the_allowed_origins_may_frame_it_and_no_other_page(self, client, settings):
        settings.EMBED_ALLOWED_ORIGINS = ["chrome-extension://abcdef", "https://x.example"]
        response = client.get(EMBED)
        assert frame_ancestors(response) == (
            "frame-ancestors chrome-extension://abcdef https://x.example"
        )
        assert "X-Frame-Options" not in response
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert b"<script>" not in response.content, "no inline script: the CSP forbids it"
        other = client.get("/validate")
        assert frame_ancestors(other) == "frame-ancestors 'none'"
        assert other["X-Frame-Options"] == "DENY"

    @pytest.mark.parametrize(
        "value", ["https://a.example; script-src *", "a.example", "https://a.example/path", "*"]
    )
    def test_an_origin_setting_that_is_not_an_origin_refuses_to_start(self, monkeypatch, value):
        monkeypatch.setenv("EMBED_ALLOWED_ORIGINS", f"https://ok.example,{value}")
        with pytest.raises(ImproperlyConfigured, match="EMBED_ALLOWED_ORIGINS"):
            env_origins("EMBED_ALLOWED_ORIGINS")


class Parent:
    """A page of another origin (a second loopback address) that frames /verify."""

    def __init__(self, folder, host: str, target: str):
        (folder / "index.html").write_text(
            "<!doctype html><title>extension</title>"
            '<script src="listen.js"></script>'
            f'<iframe id="embed" src="{target}" width="600" height="700"></iframe>'
        )
        (folder / "listen.js").write_text(
            "window.received = [];"
            "window.addEventListener('message', function (e) {"
            " window.received.push([e.origin, e.data]); });"
        )
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer((host, 0), handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def parents(tmp_path, live_server):
    made = []

    def parent(host: str) -> Parent:
        folder = tmp_path / host
        folder.mkdir()
        made.append(Parent(folder, host, live_server.url + EMBED))
        return made[-1]

    yield parent
    for each in made:
        each.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_allowed_origin_frames_the_question_and_hears_when_it_is_answered(
    browser, live_server, parents, settings, screenshot_dir
):
    image = real_public_image("dog")
    allowed, other = parents("127.0.0.2"), parents("127.0.0.3")
    settings.EMBED_ALLOWED_ORIGINS = [allowed.url]
    context = browser.new_context(viewport={"width": 800, "height": 900})
    context.set_default_timeout(15000)
    try:
        page = context.new_page()
        page.goto(allowed.url + "/index.html")
        frame = page.frame_locator("#embed")
        frame.get_by_role("heading", level=1).wait_for()
        assert "Is there a dog" in frame.get_by_role("heading", level=1).inner_text()
        page.screenshot(path=str(screenshot_dir / "embed.png"))
        frame.get_by_role("button", name="Yes").click()
        frame.locator("#embed-done").wait_for()
        page.wait_for_function("window.received.length > 0")
        assert page.evaluate("window.received") == [[live_server.url, "done button pressed"]]
        vote = Vote.objects.get()
        assert vote.pair.image == image and vote.answer == Vote.Answer.YES

        refused = context.new_page()
        refused.goto(other.url + "/index.html", wait_until="load")  # the frame's load too
        (embedded,) = refused.frames[1:]
        assert embedded.evaluate("document.getElementById('embed')") is None, (
            "another origin gets no /verify in its frame"
        )
    finally:
        context.close()
