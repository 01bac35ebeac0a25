"""Private until approved: storage, moderation decisions, reports, scripted moderation."""

import errno
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.exceptions import SuspiciousOperation
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from donations.ingest import ingest
from donations.models import Image, ModerationConflict, ModerationDecision
from donations.storage import (
    RENDITIONS,
    AtomicFileSystemStorage,
    private_storage,
    public_storage,
)
from people.models import Voter
from tests.helpers import make_image, make_pair, make_voter, photo_bytes, vote
from tests.media import (
    StoredFile,
    fetch_public,
    filesystem_only,
    private_file,
    public_file,
    stored_media,
)
from validation.models import Vote

pytestmark = pytest.mark.django_db


def pending_image(**kwargs) -> Image:
    outcome = ingest(photo_bytes(300, 200), filename="p.jpg", **kwargs)
    assert outcome.accepted, outcome.message
    return outcome.image


@pytest.fixture
def moderator() -> tuple[Client, User]:
    user = User.objects.create_user("mod", "m@example.org", "a long enough password", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_image", "view_image"])
    )
    client = Client()
    client.force_login(user)
    return client, user


# A picture that is not there: the filesystem's 404, or a bucket's 403 (public/ may be read,
# not listed, so a missing key is refused rather than reported missing).
NOT_SERVED = (403, 404)


def test_a_pending_picture_lives_only_in_private_storage(client):
    image = pending_image()
    assert all(private_file(image, kind).exists() for kind in ("master", "display", "thumb"))
    assert not public_file(image).exists()
    assert client.get(f"/image/{image.uuid}").status_code == 404
    assert client.get(f"/media/{image.file_name('master')}").status_code == 404


def test_no_public_url_can_be_made_for_a_private_file():
    image = pending_image()
    with pytest.raises(ValueError):
        private_storage().url(image.file_name("master"))
    with pytest.raises(SuspiciousOperation):
        public_storage().url(f"../private/{image.file_name('master')}")


def test_visitors_cannot_open_the_moderators_file_view(client):
    image = pending_image()
    url = reverse("donations:private-file", args=[image.uuid, "display"])
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    plain = User.objects.create_user(
        "plain", "p@example.org", "a long enough password", is_staff=True
    )
    client.force_login(plain)
    assert client.get(url).status_code == 404


def test_moderators_see_pending_files(moderator):
    client, _ = moderator
    image = pending_image()
    url = reverse("donations:private-file", args=[image.uuid, "thumb"])
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == private_file(image, "thumb").read_bytes()
    assert response["Cache-Control"] == "private, no-store"


@filesystem_only
def test_behind_nginx_moderators_get_pending_files_through_x_accel(moderator, settings):
    client, _ = moderator
    image = pending_image()
    url = reverse("donations:private-file", args=[image.uuid, "thumb"])
    settings.PRIVATE_MEDIA_X_ACCEL = True
    response = client.get(url)
    assert response["X-Accel-Redirect"] == f"/_private/{image.file_name('thumb')}"
    assert response.content == b""


def test_approving_moves_the_files_to_public_media(
    client, moderator, django_capture_on_commit_callbacks
):
    _, user = moderator
    image = pending_image()
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("approve", moderator=user)
    assert public_file(image).exists() and not private_file(image).exists()
    served = fetch_public(client, image.url("master"))
    assert served.status == 200 and served.body == public_file(image).read_bytes()
    assert client.get(f"/image/{image.uuid}").status_code == 200
    decision = ModerationDecision.objects.get()
    assert (decision.action, decision.moderator) == ("approve", user)


@filesystem_only
def test_approved_files_the_app_serves_itself_are_sandboxed_and_never_sniffed(
    client, django_capture_on_commit_callbacks
):
    image = pending_image()
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("approve")
    response = client.get(f"/media/{image.file_name('master')}")
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_a_hidden_picture_comes_back_at_new_urls_and_caches_must_ask_again(
    client, django_capture_on_commit_callbacks
):
    image = pending_image()
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("approve")
    first = image.url("display")
    response = fetch_public(client, first)
    assert response.status == 200
    assert (
        response.headers["Cache-Control"] == "public, max-age=3600, s-maxage=60, proxy-revalidate"
    )
    assert "immutable" not in response.headers["Cache-Control"]
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("hide")
    assert fetch_public(client, first).status in NOT_SERVED
    assert all(private_file(image, kind).exists() for kind in ("master", "display", "thumb"))
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("approve")
    again = image.url("display")
    assert again != first and str(image.uuid) in again
    assert fetch_public(client, again).status == 200
    assert fetch_public(client, first).status in NOT_SERVED, "the old URL never shows it again"
    image.refresh_from_db()
    assert public_file(image).exists() and not private_file(image).exists()


def test_rejecting_keeps_the_files_for_a_while_then_purges_them_and_blocks_the_file(
    moderator, django_capture_on_commit_callbacks, settings
):
    _, user = moderator
    data = photo_bytes(300, 200)
    image = ingest(data).image
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("reject", moderator=user)
    assert private_file(image).exists() and not public_file(image).exists()
    image.refresh_from_db()
    assert image.files_kept_until > image.decided_at
    again = ingest(data)
    assert again.status == "duplicate" and "not accepted" in again.message
    out = StringIO()
    call_command("purge_rejected", stdout=out)
    assert "0 rejected" in out.getvalue() and private_file(image).exists(), "not due yet"
    Image.objects.filter(pk=image.pk).update(files_kept_until=image.decided_at)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_rejected", stdout=out)
    assert "1 rejected" in out.getvalue()
    assert not private_file(image).exists() and not public_file(image).exists()
    image.refresh_from_db()
    assert image.files_kept_until is None
    with pytest.raises(ModerationConflict, match="files are gone"):
        image.decide("reopen", moderator=user)
    assert ingest(data).status == "duplicate"
    assert Image.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_purge_runs_outside_a_test_transaction_as_the_hourly_timer_runs_it():
    image = ingest(photo_bytes(300, 200)).image
    image.decide("reject")
    Image.objects.filter(pk=image.pk).update(files_kept_until=timezone.now())
    out = StringIO()
    call_command("purge_rejected", stdout=out)  # autocommit, as systemd runs it
    assert "1 rejected" in out.getvalue()
    assert not private_file(image).exists()


def test_a_rejected_public_picture_leaves_public_media_at_once_and_can_be_undone(
    moderator, django_capture_on_commit_callbacks
):
    client, user = moderator
    image = pending_image()
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("approve", moderator=user)
    published = public_file(image)  # its name carries the publication key
    assert published.exists()
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("reject", moderator=user)
    assert not published.exists() and private_file(image).exists()
    assert Client().get(f"/image/{image.uuid}").status_code == 404
    queue = client.get("/admin/donations/image/queue/?show=rejected").content.decode()
    assert str(image.uuid) in queue and "Undo the rejection" in queue
    with django_capture_on_commit_callbacks(execute=True):
        undone = client.post(
            "/admin/donations/image/queue/?show=rejected",
            {"decision": "reopen", "selected": [str(image.uuid)]},
        )
    assert undone.status_code == 302
    image.refresh_from_db()
    assert image.status == "pending" and image.files_kept_until is None
    assert private_file(image).exists()


def test_orphans_does_not_call_the_kept_files_of_a_rejection_stray(moderator):
    _, user = moderator
    image = pending_image()
    image.decide("reject", moderator=user)
    out = StringIO()
    call_command("orphans", "--grace", "0", stdout=out)
    assert "0 stray file(s)" in out.getvalue()


def test_the_changelists_reject_action_shows_the_count_and_asks(moderator):
    client, _ = moderator
    images = [pending_image(), pending_image()]
    response = client.post(
        "/admin/donations/image/",
        {"action": "reject", "_selected_action": [image.pk for image in images]},
    )
    assert response.status_code == 200
    assert "reject <strong>2 pictures</strong>" in response.content.decode()
    assert not Image.objects.filter(status="rejected").exists(), "nothing rejected yet"


def test_a_second_decision_on_the_same_picture_gets_a_clear_message(moderator):
    _, user = moderator
    image = pending_image()
    Image.objects.get(pk=image.pk).decide("approve", moderator=user)
    with pytest.raises(ModerationConflict, match="already public by mod"):
        Image.objects.get(pk=image.pk).decide("approve", moderator=user)
    assert Image.objects.get(pk=image.pk).status == "public"


@pytest.mark.django_db(transaction=True)
def test_two_moderators_deciding_at_once_leave_one_decision():
    image = pending_image()
    results = []
    barrier = threading.Barrier(2)

    def decide(action):
        barrier.wait()
        try:
            Image.objects.get(pk=image.pk).decide(action, expected="pending")
            results.append(action)
        except ModerationConflict:
            results.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(a,)) for a in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("conflict") == 1
    image.refresh_from_db()
    assert image.status in ("public", "rejected")
    assert ModerationDecision.objects.count() == 1
    public = public_file(image).exists()
    assert public == (image.status == "public")


def report_as(voter: Voter | None, image: Image, address: str, reason: str = "personal"):
    """A report through the API by `voter` (None: no token, a new voter), from `address`."""
    headers = {}
    if voter is not None:
        token = f"token-{voter.pk}"
        Voter.objects.filter(pk=voter.pk).update(token_sha256=Voter.hash_token(token))
        headers["HTTP_X_VOTER_TOKEN"] = token
    return Client().post(
        f"/v1/report/{image.uuid}",
        {"reason": reason},
        content_type="application/json",
        REMOTE_ADDR=address,
        **headers,
    )


def public_image(django_capture_on_commit_callbacks) -> Image:
    image = pending_image()
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("approve")
    return image


def test_reports_by_voters_with_a_history_from_different_networks_hide_a_picture(
    client, settings, django_capture_on_commit_callbacks
):
    settings.REPORTS_TO_HIDE = 2
    image = public_image(django_capture_on_commit_callbacks)
    first, second = make_voter(trusted=True), make_voter(trusted=True)
    assert report_as(first, image, "198.51.100.7").status_code == 200
    assert report_as(first, image, "198.51.100.7").status_code == 409
    image.refresh_from_db()
    assert image.status == "public"
    with django_capture_on_commit_callbacks(execute=True):
        assert report_as(second, image, "203.0.113.9", "copyright").status_code == 200
    image.refresh_from_db()
    assert image.status == "hidden"
    assert private_file(image).exists() and not public_file(image).exists()
    assert client.get(f"/image/{image.uuid}").status_code == 404


def test_fresh_identities_report_for_moderators_but_hide_nothing(
    settings, django_capture_on_commit_callbacks
):
    """The red team's attack: token-less reports, each a brand-new voter, from anywhere."""
    settings.REPORTS_TO_HIDE = 3
    image = public_image(django_capture_on_commit_callbacks)
    for n in range(10):
        assert report_as(None, image, f"192.0.{n}.1").status_code == 200
    for n in range(3):  # and the page's form, each from a new browser
        Client(REMOTE_ADDR=f"10.{n}.0.1").post(
            f"/image/{image.uuid}/report", {"reason": "other", "text": "no"}
        )
    image.refresh_from_db()
    assert image.status == "public"
    assert image.reports.count() == 13
    assert Image.objects.reported().filter(pk=image.pk).exists()  # the moderators' list


def test_voters_with_a_history_on_one_network_count_once(
    settings, django_capture_on_commit_callbacks
):
    settings.REPORTS_TO_HIDE = 2
    image = public_image(django_capture_on_commit_callbacks)
    for n in range(5):
        report_as(make_voter(trusted=True), image, f"198.51.100.{n + 1}")
    image.refresh_from_db()
    assert image.status == "public"


def test_a_staff_account_counts_and_a_fresh_account_or_a_banned_voter_does_not(
    settings, django_capture_on_commit_callbacks
):
    """Anyone can sign up, so an account without a gold record is no history."""
    settings.REPORTS_TO_HIDE = 2
    image = public_image(django_capture_on_commit_callbacks)
    banned = make_voter(trusted=True, banned=True)
    report_as(banned, image, "198.51.100.1")
    member = make_voter(user=User.objects.create_user("member", password="x" * 20))
    report_as(member, image, "203.0.113.1")
    staff = make_voter(user=User.objects.create_user("staff", password="x" * 20, is_staff=True))
    report_as(staff, image, "203.0.114.1")
    image.refresh_from_db()
    assert image.status == "public"
    with django_capture_on_commit_callbacks(execute=True):
        report_as(make_voter(trusted=True), image, "192.0.2.1")
    image.refresh_from_db()
    assert image.status == "hidden"


def test_a_report_sent_as_plain_text_is_refused_and_creates_no_one(
    django_capture_on_commit_callbacks,
):
    """A page elsewhere can make a browser send text/plain without asking first."""
    image = public_image(django_capture_on_commit_callbacks)
    response = Client().post(
        f"/v1/report/{image.uuid}", '{"reason": "sensitive"}', content_type="text/plain"
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert not image.reports.exists() and not Voter.objects.exists()


def test_a_report_of_kind_other_needs_words(client):
    image = pending_image()
    image.decide("approve")
    response = client.post(f"/image/{image.uuid}/report", {"reason": "other", "text": " "})
    assert response.status_code == 400
    assert "tell us what is wrong" in response.content.decode()


def test_the_moderate_command_decides_by_uuid():
    first, second = pending_image(), pending_image()
    out = StringIO()
    call_command("moderate", "--approve", str(first.uuid), str(second.uuid), stdout=out)
    assert Image.objects.filter(status="public").count() == 2
    with pytest.raises(CommandError, match="1 of 1"):
        call_command("moderate", "--approve", str(first.uuid), stdout=out, stderr=StringIO())
    with pytest.raises(CommandError):
        call_command("moderate", "--reject", "not-a-uuid", stdout=out, stderr=StringIO())


def test_the_orphans_command_reports_and_removes_stray_files():
    image = pending_image()
    private_storage().save("ab/stray.jpg", ContentFile(b"x"))
    stray = StoredFile(private_storage(), "ab/stray.jpg")
    private_file(image, "thumb").unlink()
    out = StringIO()
    call_command("orphans", "--grace", "0", stdout=out)
    report = out.getvalue()
    assert "has no thumb file" in report and "stray: private/ab/stray.jpg" in report
    assert stray.exists()
    call_command("orphans", "--grace", "0", "--delete", stdout=StringIO())
    assert not stray.exists()
    assert private_file(image).exists(), "files that belong to a row are kept"


@filesystem_only
def test_the_orphans_command_removes_the_temporary_file_of_a_crashed_write():
    crashed = Path(settings.MEDIA_ROOT) / "private" / "ab" / ".tmp-0123456789abcdef"
    crashed.parent.mkdir(parents=True, exist_ok=True)
    crashed.write_bytes(b"half")  # a write a hard kill interrupted
    out = StringIO()
    call_command("orphans", "--grace", "0", stdout=out)
    assert "stray: private/ab/.tmp-0123456789abcdef" in out.getvalue()
    call_command("orphans", "--grace", "0", "--delete", stdout=StringIO())
    assert not crashed.exists()


@filesystem_only
def test_an_upload_onto_a_full_disk_gets_503_and_leaves_nothing(client, monkeypatch):
    save = AtomicFileSystemStorage._save
    saved = []

    def save_once_then_fill_the_disk(self, name, content):
        if saved:
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(name)
        return save(self, name, content)

    monkeypatch.setattr(AtomicFileSystemStorage, "_save", save_once_then_fill_the_disk)
    response = client.post(
        "/v1/donate", {"image": SimpleUploadedFile("p.jpg", photo_bytes(300, 200))}
    )
    assert response.status_code == 503 and "send it again" in response.json()["error"]
    assert len(saved) == 1 and stored_media() == [] and not Image.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_upload_whose_commit_fails_leaves_no_file(monkeypatch):
    def failing_commit():
        raise OperationalError("the server went away during COMMIT")

    monkeypatch.setattr(connection, "commit", failing_commit)
    with pytest.raises(OperationalError):
        ingest(photo_bytes(300, 200), filename="p.jpg")
    monkeypatch.undo()
    assert stored_media() == [] and not Image.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_approval_whose_commit_fails_leaves_no_public_file(monkeypatch):
    image = pending_image()

    def failing_commit():
        raise OperationalError("the server went away during COMMIT")

    monkeypatch.setattr(connection, "commit", failing_commit)
    with pytest.raises(OperationalError):
        image.decide("approve")
    monkeypatch.undo()
    image.refresh_from_db()
    assert image.status == Image.Status.PENDING
    assert stored_media() == sorted(f"private/{image.file_name(kind)}" for kind in RENDITIONS)


def test_the_admin_queue_shows_pending_pictures_and_decides_in_bulk(moderator):
    client, _ = moderator
    first, second = pending_image(), pending_image(donor=make_voter())
    page = client.get("/admin/donations/image/queue/")
    assert page.status_code == 200
    body = page.content.decode()
    assert str(first.uuid) in body and "Pending (2)" in body
    response = client.post(
        "/admin/donations/image/queue/?show=pending",
        {"decision": "approve", "selected": [str(first.uuid), str(second.uuid)]},
        follow=True,
    )
    assert "2 picture(s) approved" in response.content.decode()
    assert Image.objects.filter(status="public").count() == 2


def test_the_admin_list_and_detail_pages_render(moderator):
    client, _ = moderator
    user = User.objects.create_superuser("root", "r@example.org", "a long enough password")
    client.force_login(user)
    image = pending_image()
    assert client.get("/admin/donations/image/").status_code == 200
    assert client.get(f"/admin/donations/image/{image.pk}/change/").status_code == 200
    assert client.get("/admin/donations/image/?flag=similar").status_code == 200
    assert client.get("/admin/donations/moderationdecision/").status_code == 200


def test_the_voting_admin_pages_render(moderator):
    client, _ = moderator
    client.force_login(
        User.objects.create_superuser("boss", "b@example.org", "a long enough password")
    )
    voter = Voter.objects.create(trusted=True, gold_correct=5)
    pair = make_pair("dog", make_image())
    vote(pair, voter, Vote.Answer.YES, "10.0.0.0/24")
    for path in (
        "/admin/people/voter/",
        f"/admin/people/voter/{voter.pk}/change/",
        "/admin/donations/imagelabel/",
        f"/admin/donations/imagelabel/{pair.pk}/change/",
        "/admin/validation/alert/",
    ):
        assert client.get(path).status_code == 200, path


def test_rejecting_from_the_queue_shows_the_count_and_asks_once_more(moderator):
    client, _ = moderator
    images = [pending_image() for _ in range(3)]
    selected = [str(image.uuid) for image in images]
    asked = client.post(
        "/admin/donations/image/queue/?show=pending", {"decision": "reject", "selected": selected}
    )
    assert asked.status_code == 200
    assert "reject <strong>3 pictures</strong>" in asked.content.decode()
    assert Image.objects.filter(status="pending").count() == 3, "nothing was rejected yet"
    client.post(
        "/admin/donations/image/queue/?show=pending",
        {"decision": "reject", "selected": selected, "confirm": "yes"},
    )
    assert Image.objects.filter(status="rejected").count() == 3


def test_the_admin_home_links_the_queue_and_view_on_site_opens_what_a_moderator_may_see(
    moderator,
):
    client, _ = moderator
    assert "Moderation queue" in client.get("/admin/").content.decode()
    image = pending_image()
    response = client.get(f"/admin/donations/image/{image.pk}/change/")
    body = response.content.decode()
    assert f"/moderation/file/{image.uuid}/display" in body
    assert 'style="max-width' not in body, "no inline style: the CSP would block it"


def test_deleting_a_label_pictures_use_says_what_to_do_instead(client):
    root = User.objects.create_superuser("root", "r@example.org", "a long enough password")
    client.force_login(root)
    pair = make_pair("dog")
    response = client.post(
        "/admin/labels/label/",
        {"action": "delete_selected", "_selected_action": [pair.label_id]},
    )
    body = response.content.decode()
    assert "is on 1 picture(s): deactivate it" in body
    assert str(pair) not in body, "no raw list of the pairs that hold it"
