import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.helpers import make_label

pytestmark = pytest.mark.django_db


def test_the_home_page_says_what_imagemonkey_is_and_shows_counts(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Finding good images is hard" in body
    assert "public images" in body and "validated image–label pairs" in body
    assert 'aria-label="Main"' in body


def test_every_page_has_a_content_security_policy_without_inline_scripts(client):
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_unknown_pages_get_the_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert b"We could not find that page" in response.content


def test_unknown_api_paths_answer_json(client):
    response = client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_the_label_api_lists_active_label_names(client):
    call_command("populate_labels", stdout=StringIO())
    response = client.get("/v1/label")
    assert response.status_code == 200
    names = response.json()
    assert len(names) >= 100 and "dog" in names
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_detailed_label_api_describes_each_label(client):
    dog = make_label("dog", description="Barks.", plural="dogs")
    make_label("eye", parent=dog, description="Sees.")
    dog.synonyms.create(name="puppy")
    detailed = client.get("/v1/label?detailed=true").json()
    assert detailed["dog"]["sublabels"] == ["eye"]
    assert detailed["dog"]["has"] == {"eye": {"description": "Sees."}}
    assert detailed["dog"]["synonyms"] == ["puppy"]
    assert detailed["dog"]["plural"] == "dogs"


def test_accessors_name_parts_the_way_export_queries_do(client):
    dog = make_label("dog")
    make_label("eye", parent=dog)
    assert client.get("/v1/label/accessors").json() == ["dog", "dog.has='eye'"]


def test_random_label_answers_one_of_the_labels(client):
    make_label("dog")
    assert client.get("/v1/label/random").json() == {"label": "dog"}


def test_writes_to_read_only_api_endpoints_are_refused(client):
    response = client.post("/v1/label")
    assert response.status_code == 405
    assert "error" in response.json()


def test_the_label_page_lists_the_vocabulary(client):
    make_label("dog", description="A <b>pet</b>.")
    body = client.get("/labels").content.decode()
    assert "A &lt;b&gt;pet&lt;/b&gt;." in body


def test_the_admin_login_page_answers(client):
    assert client.get("/admin/login/").status_code == 200


def test_health_checks_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_rate_limiting_checks_pass_without_being_silenced():
    call_command("check", fail_level="WARNING")
    assert not any("django_ratelimit" in s for s in settings.SILENCED_SYSTEM_CHECKS)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env["DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_head_robots_and_the_favicon_answer_as_browsers_and_crawlers_expect(client):
    assert client.head("/").status_code == 200
    assert client.head("/browse").status_code == 200
    robots = client.get("/robots.txt")
    assert robots.status_code == 200 and robots["Content-Type"].startswith("text/plain")
    assert "Disallow: /admin/" in robots.content.decode()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"].endswith(".svg")
    assert client.get(icon["Location"]).status_code == 200
