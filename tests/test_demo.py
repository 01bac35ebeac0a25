"""`manage.py demo` (make demo): public-domain photos with labels and gold, a demo moderator,
and nothing changed by a second run."""

import io
import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations.models import Image, ImageLabel
from labels.models import Label
from validation import demo, selection
from validation.models import Vote

pytestmark = pytest.mark.django_db

NAMES = ["cat", "dog", "cup", "coffee", "spoon", "table", "person", "woman", "flag", "sky", "clock"]


@pytest.fixture
def vocabulary():
    for name in NAMES:
        Label.objects.create(name=name)


@pytest.fixture
def data_dir(tmp_path, settings):
    settings.DATA_DIR = tmp_path
    return tmp_path


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def test_the_demo_loads_public_photos_with_questions_gold_and_a_moderator(vocabulary, data_dir):
    said = run_demo()
    assert Image.objects.public().count() == len(demo.SAMPLES)
    gold = ImageLabel.objects.filter(is_gold=True)
    assert {(pair.label.name, pair.gold_answer) for pair in gold} == {
        ("cat", True),
        ("dog", False),
        ("cup", True),
        ("person", True),
        ("cat", False),
    }, "known yes and known no answers, so that training can be passed"
    assert ImageLabel.objects.filter(servable=True).count() >= 8, "questions for the crowd"
    password_file = data_dir / "demo_moderator_password"
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert f"as demo-moderator with the password {password}" in said
    moderator = get_user_model().objects.get(username="demo-moderator")
    assert moderator.is_staff and moderator.check_password(password)
    assert moderator.has_perm("donations.change_image")
    assert not moderator.is_superuser


def test_a_second_run_changes_nothing_and_prints_the_same_password(vocabulary, data_dir):
    first = run_demo()
    with CaptureQueriesContext(connection) as queries:
        second = run_demo()
    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert not writes, writes
    assert first.splitlines()[-1] == second.splitlines()[-1]
    assert Vote.objects.count() == 5


def test_a_newcomer_is_served_the_demo_at_once(vocabulary, data_dir, client):
    run_demo()
    page = client.get("/validate")
    assert page.status_code == 200 and b'id="vote-form"' in page.content
    assert selection.labels_with_open_tasks(), "the grid picker has labels"


def test_every_sample_is_public_domain_or_cc0_and_listed_on_the_about_page(client):
    page = client.get("/about").content.decode()
    for sample in demo.SAMPLES:
        assert "public domain" in sample.licence or sample.licence.startswith("CC0")
        assert sample.title in page and sample.credit in page
        assert (demo.sample_folder() / sample.file).is_file()
