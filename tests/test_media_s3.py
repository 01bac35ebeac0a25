"""MEDIA_BACKEND=s3 against a real S3 protocol server on loopback (moto's, tests/s3.py),
through the same django-storages and boto3 code production uses."""

import hashlib
import socket
import uuid
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import Permission, User
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from donations import pairs, storage
from donations.ingest import ingest
from donations.models import Image
from donations.storage import (
    PUBLIC_FILE_CACHE_CONTROL,
    RENDITIONS,
    private_storage,
    public_storage,
)
from tests.helpers import make_voter, photo_bytes

pytestmark = pytest.mark.django_db


def donate(seed: int = 0) -> Image:
    outcome = ingest(photo_bytes(300, 200, color=(seed * 40 % 256, 90, 30)), filename="p.jpg")
    assert outcome.accepted, outcome.message
    return outcome.image


def approve(image: Image, capture) -> Image:
    with capture(execute=True):
        image.decide("approve")
    return image


def private_keys(image: Image) -> list[str]:
    return sorted(f"private/{image.file_name(kind, public=False)}" for kind in RENDITIONS)


def public_keys(image: Image) -> list[str]:
    return sorted(f"public/{image.file_name(kind, public=True)}" for kind in RENDITIONS)


@pytest.fixture
def stop_the_bucket(s3_media, settings):
    """Call it, and the bucket stops answering: its endpoint becomes a closed loopback port."""

    def stop() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        settings.AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{closed}"
        settings.STORAGES = dict(settings.STORAGES)  # new storage objects, with that endpoint

    return stop


@pytest.fixture
def moderator() -> Client:
    user = User.objects.create_user("mod", "m@example.org", "a long enough password", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_image", "view_image"])
    )
    client = Client()
    client.force_login(user)
    return client


def test_a_donated_picture_is_only_in_the_private_prefix_which_anonymous_readers_cannot_get(
    s3_media, client
):
    image = donate()
    assert s3_media.stored() == private_keys(image)
    for key in s3_media.stored():
        anonymous = requests.get(f"{s3_media.server.endpoint}/{s3_media.bucket}/{key}", timeout=5)
        assert anonymous.status_code == 403, key
        assert s3_media.object(key)["CacheControl"] == "private, no-store"
    # The app never emits a bucket URL for it, and cannot be made to.
    assert image.url("display") == reverse("donations:private-file", args=[image.uuid, "display"])
    with pytest.raises(ValueError):
        private_storage().url(image.file_name("master"))
    with pytest.raises(SuspiciousOperation):
        public_storage().url(f"../private/{image.file_name('master')}")
    assert not f"{s3_media.server.endpoint}/{s3_media.bucket}/private/".startswith(
        public_storage().base_url
    )
    assert client.get(f"/image/{image.uuid}").status_code == 404


def test_a_moderator_gets_a_pending_picture_through_the_app_never_a_bucket_url(
    s3_media, moderator, settings
):
    image = donate()
    settings.PRIVATE_MEDIA_X_ACCEL = True  # nginx holds no bucket credentials: the app sends it
    response = moderator.get(reverse("donations:private-file", args=[image.uuid, "thumb"]))
    assert response.status_code == 200 and "X-Accel-Redirect" not in response
    assert response["Cache-Control"] == "private, no-store"
    body = b"".join(response.streaming_content)
    stored = s3_media.server.client().get_object(
        Bucket=s3_media.bucket, Key=f"private/{image.file_name('thumb')}"
    )
    assert body == stored["Body"].read() and body[:2] == b"\xff\xd8"


def test_every_object_carries_the_sha256_of_its_bytes(s3_media):
    image = donate()
    master = s3_media.server.client().get_object(
        Bucket=s3_media.bucket, Key=f"private/{image.file_name('master')}"
    )
    data = master["Body"].read()
    assert master["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest() == image.master_sha256


def test_approval_copies_the_picture_to_the_public_prefix_where_anyone_reads_it_with_cache_control(
    s3_media, client, django_capture_on_commit_callbacks
):
    image = approve(donate(), django_capture_on_commit_callbacks)
    assert s3_media.stored() == public_keys(image), "the private copies go once it committed"
    url = image.url("display")
    assert url == f"{s3_media.public_base()}{image.file_name('display')}"
    assert image.publication in url
    served = requests.get(url, timeout=5)
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == PUBLIC_FILE_CACHE_CONTROL
    assert served.headers["Content-Type"] == "image/jpeg"
    master = requests.get(image.url("master"), timeout=5).content
    assert hashlib.sha256(master).hexdigest() == image.master_sha256
    assert url in client.get(f"/image/{image.uuid}").content.decode()
    assert image.url("thumb") in client.get("/browse").content.decode()
    api = client.get(f"/v1/donation/{image.uuid}")
    assert b"".join(api.streaming_content) == master


def test_a_cdn_in_front_of_the_bucket_gets_the_public_urls(
    s3_media, django_capture_on_commit_callbacks
):
    with override_settings(MEDIA_PUBLIC_URL="https://cdn.example.org/media/"):
        image = approve(donate(), django_capture_on_commit_callbacks)
        assert image.url("thumb") == f"https://cdn.example.org/media/{image.file_name('thumb')}"


def image_sources(response) -> list[str]:
    """The img-src of a response's Content-Security-Policy."""
    for directive in response["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        if name == "img-src":
            return sources
    return []


def test_pages_let_browsers_load_pictures_from_the_bucket_or_the_cdn_in_front_of_it(
    s3_media, client, settings, django_capture_on_commit_callbacks
):
    image = approve(donate(), django_capture_on_commit_callbacks)
    page = client.get(f"/image/{image.uuid}")
    assert image.url("display") in page.content.decode()
    assert s3_media.server.endpoint in image_sources(page)  # the bucket's origin, path style
    assert "'self'" in image_sources(page)
    settings.MEDIA_PUBLIC_URL = "https://cdn.example.org/media/"
    settings.STORAGES = dict(settings.STORAGES)  # new storage objects, with that base
    page = client.get(f"/image/{image.uuid}")
    assert image.url("display").startswith("https://cdn.example.org/media/")
    assert "https://cdn.example.org" in image_sources(page)
    assert s3_media.server.endpoint not in image_sources(page)


def test_hiding_a_picture_removes_it_from_the_public_prefix(
    s3_media, django_capture_on_commit_callbacks
):
    image = approve(donate(), django_capture_on_commit_callbacks)
    url = image.url("display")
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("hide")
    assert s3_media.stored() == private_keys(image)
    assert requests.get(url, timeout=5).status_code in (403, 404)
    with django_capture_on_commit_callbacks(execute=True):
        image.decide("approve")  # published again, at new URLs
    assert s3_media.stored() == public_keys(image) and image.url("display") != url


def test_a_withdrawn_or_rejected_picture_leaves_no_object(
    s3_media, django_capture_on_commit_callbacks
):
    withdrawn, rejected = donate(1), donate(2)
    with django_capture_on_commit_callbacks(execute=True):
        rejected.decide("reject")
    # A rejection keeps the files, private, while it can be undone; the purge then removes them.
    assert s3_media.stored() == sorted(private_keys(withdrawn) + private_keys(rejected))
    Image.objects.filter(pk=rejected.pk).update(files_kept_until=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_rejected", stdout=StringIO())
    assert s3_media.stored() == private_keys(withdrawn)
    donor = make_voter()
    Image.objects.filter(pk=withdrawn.pk).update(donor=donor)
    withdrawn.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        withdrawn.withdraw(donor)
    assert s3_media.stored() == []


def test_an_ingest_that_fails_inside_its_transaction_leaves_no_object(s3_media, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the pairs could not be written")

    monkeypatch.setattr(pairs, "attach_many", broken)
    with pytest.raises(RuntimeError):
        ingest(photo_bytes(300, 200), filename="p.jpg")
    assert s3_media.stored() == [] and not Image.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_ingest_whose_commit_fails_leaves_no_object(s3_media, monkeypatch):
    def failing_commit():
        raise OperationalError("the server went away during COMMIT")

    monkeypatch.setattr(connection, "commit", failing_commit)
    with pytest.raises(OperationalError):
        ingest(photo_bytes(300, 200), filename="p.jpg")
    monkeypatch.undo()
    assert s3_media.stored() == [] and not Image.objects.exists()


def test_an_approval_that_rolls_back_leaves_no_public_object(s3_media, monkeypatch):
    image = donate()
    copy = storage.copy_file
    calls = []

    def copy_twice_then_fail(*args):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("the bucket stopped answering")
        return copy(*args)

    monkeypatch.setattr(storage, "copy_file", copy_twice_then_fail)
    with pytest.raises(OSError):
        image.decide("approve")
    image.refresh_from_db()
    assert image.status == Image.Status.PENDING
    assert s3_media.stored() == private_keys(image), "the two public copies were removed"


@pytest.mark.django_db(transaction=True)
def test_an_approval_whose_commit_fails_leaves_no_public_object(s3_media, monkeypatch):
    image = donate()

    def failing_commit():
        raise OperationalError("the server went away during COMMIT")

    monkeypatch.setattr(connection, "commit", failing_commit)
    with pytest.raises(OperationalError):
        image.decide("approve")
    monkeypatch.undo()
    image.refresh_from_db()
    assert image.status == Image.Status.PENDING
    assert s3_media.stored() == private_keys(image)


def test_orphans_compares_the_bucket_with_the_rows(s3_media, django_capture_on_commit_callbacks):
    kept, broken = donate(1), approve(donate(2), django_capture_on_commit_callbacks)
    client = s3_media.server.client()
    client.put_object(Bucket=s3_media.bucket, Key="private/ab/stray.jpg", Body=b"x")
    client.put_object(Bucket=s3_media.bucket, Key="public/cd/leaked.jpg", Body=b"y")
    public_storage().delete(broken.file_name("thumb"))
    out = StringIO()
    call_command("orphans", "--grace", "0", stdout=out)
    report = out.getvalue()
    assert f"{broken.uuid} (public) has no thumb file" in report
    assert "stray: private/ab/stray.jpg" in report and "stray: public/cd/leaked.jpg" in report
    assert "1 image(s) missing files, 2 stray file(s)." in report
    call_command("orphans", "--grace", "0", "--delete", stdout=StringIO())
    keys = s3_media.stored()
    assert "private/ab/stray.jpg" not in keys and "public/cd/leaked.jpg" not in keys
    assert set(private_keys(kept)) <= set(keys), "objects that belong to a row are kept"
    young = StringIO()
    client.put_object(Bucket=s3_media.bucket, Key="private/ef/young.jpg", Body=b"z")
    call_command("orphans", stdout=young)  # within the grace period: an upload in flight
    assert "young.jpg" not in young.getvalue()


def local_files(settings) -> dict[str, bytes]:
    root = Path(settings.MEDIA_ROOT)
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def migrate(*flags) -> str:
    out = StringIO()
    call_command("media", "migrate-to-s3", *flags, stdout=out)
    return out.getvalue()


def test_migrate_to_s3_copies_a_filesystem_instance_verified_and_resumable(
    s3_server, settings, django_capture_on_commit_callbacks
):
    pending = donate(1)  # the filesystem backend: tests' default
    approve(donate(2), django_capture_on_commit_callbacks)
    files = local_files(settings)
    assert len(files) == 6
    crashed = Path(settings.MEDIA_ROOT) / "private" / "ab" / ".tmp-0123456789abcdef"
    crashed.parent.mkdir(parents=True, exist_ok=True)
    crashed.write_bytes(b"a write a hard kill interrupted: never copied")
    bucket = s3_server.new_bucket()
    client = s3_server.client()
    with override_settings(**{**s3_server.settings(bucket), "MEDIA_BACKEND": "filesystem"}):
        report = migrate("--dry-run")
        assert "6 file(s) would copy" in report and s3_server.keys(bucket) == []

        report = migrate()
        assert "6 file(s) copied" in report and "0 already in bucket" in report
        assert s3_server.keys(bucket) == sorted(files)
        for key, data in files.items():
            stored = client.get_object(Bucket=bucket, Key=key)
            assert stored["Body"].read() == data
            assert stored["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()

        # Interrupted: one object never arrived, another arrived damaged.
        damaged = f"private/{pending.file_name('display')}"
        client.delete_object(Bucket=bucket, Key=f"private/{pending.file_name('master')}")
        client.put_object(Bucket=bucket, Key=damaged, Body=b"half a picture")
        report = migrate()
        assert "2 file(s) copied" in report and "4 already in bucket" in report
        assert client.get_object(Bucket=bucket, Key=damaged)["Body"].read() == files[damaged]

        report = migrate("--remove-local")
        assert "0 file(s) copied" in report and "6 local file(s) removed" in report
        assert list(local_files(settings)) == ["private/ab/.tmp-0123456789abcdef"]
    s3_server.remove_bucket(bucket)


def test_migrate_to_s3_says_what_is_missing_without_a_bucket(settings):
    settings.AWS_STORAGE_BUCKET_NAME = ""
    with pytest.raises(CommandError, match="AWS_STORAGE_BUCKET_NAME"):
        migrate()


def test_the_printed_bucket_policy_lets_anyone_read_public_objects_and_nothing_else(s3_server):
    bucket = f"imagemonkey-policy-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    out = StringIO()
    with override_settings(**s3_server.settings(bucket)):
        call_command("media", "bucket-policy", stdout=out)
    client.put_bucket_policy(Bucket=bucket, Policy=out.getvalue())
    for key in ("public/ab/picture.jpg", "private/ab/picture.jpg", "other.jpg"):
        client.put_object(Bucket=bucket, Key=key, Body=b"\xff\xd8 a picture")
    anonymous = {
        key: requests.get(f"{s3_server.endpoint}/{bucket}/{key}", timeout=5).status_code
        for key in ("public/ab/picture.jpg", "private/ab/picture.jpg", "other.jpg")
    }
    assert anonymous == {
        "public/ab/picture.jpg": 200,
        "private/ab/picture.jpg": 403,
        "other.jpg": 403,
    }
    s3_server.remove_bucket(bucket)


def test_a_donation_while_the_bucket_does_not_answer_gets_503_and_stores_nothing(
    stop_the_bucket, client
):
    stop_the_bucket()
    response = client.post(
        "/v1/donate", {"image": SimpleUploadedFile("p.jpg", photo_bytes(300, 200))}
    )
    assert response.status_code == 503
    assert "send it again" in response.json()["error"]
    assert not Image.objects.exists()


def test_an_approval_while_the_bucket_does_not_answer_changes_nothing_and_says_so(
    stop_the_bucket, moderator
):
    image = donate()
    stop_the_bucket()
    response = moderator.post(
        "/admin/donations/image/queue/?show=pending",
        {"decision": "approve", "selected": [str(image.uuid)]},
        follow=True,
    )
    assert "could not be moved just now, so nothing was changed" in response.content.decode()
    image.refresh_from_db()
    assert image.status == Image.Status.PENDING and not image.decisions.exists()
    thumb = moderator.get(reverse("donations:private-file", args=[image.uuid, "thumb"]))
    assert thumb.status_code == 503 and thumb["Retry-After"] == "60"


def test_a_scripted_approval_while_the_bucket_does_not_answer_says_so(stop_the_bucket):
    image = donate()
    stop_the_bucket()
    errors = StringIO()
    with pytest.raises(CommandError, match="1 of 1"):
        call_command("moderate", "--approve", str(image.uuid), stdout=StringIO(), stderr=errors)
    assert "the media store failed" in errors.getvalue()
    image.refresh_from_db()
    assert image.status == Image.Status.PENDING
