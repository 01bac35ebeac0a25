"""The hostile corpus through the real upload path: a clear 4xx, nothing stored, never a 5xx."""

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from donations import decoding
from donations.models import Image
from tests import corpus
from tests.media import private_file, stored_files
from tests.test_decoding import png_with_a_broken_pixel_stream, wait_for
from tests.test_donations import cpu_seconds

pytestmark = pytest.mark.django_db


REFUSED = {
    "truncated JPEG": (corpus.truncated(corpus.jpeg()), "truncated"),
    "PNG whose pixel data does not decode": (png_with_a_broken_pixel_stream(), "damaged"),
    "PNG claiming 20000×20000": (corpus.png_claiming(20000, 20000), "megapixels"),
    "PNG claiming 10000×10000": (corpus.png_claiming(10000, 10000), "megapixels"),
    "zero bytes": (b"", "empty"),
    "random bytes": (corpus.random_bytes(), "not a picture"),
    "animated WebP": (corpus.animated_webp(), "Animated"),
    "progressive JPEG of 10,000 scans": (corpus.many_scans_jpeg(8000, 6000, 10_000), "scans"),
    **{f"{name} named .jpg": (data, name) for name, data in corpus.other_formats().items()},
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_hostile_file_is_refused_with_a_reason_and_leaves_nothing(client, case):
    data, reason = REFUSED[case]
    response = client.post(
        "/donate",
        {"images": [SimpleUploadedFile("photo.jpg", data, "image/jpeg")], "cc0": "on"},
        HTTP_ACCEPT="application/json",
    )
    assert 400 <= response.status_code < 500, response.content
    body = response.json()
    assert reason.lower() in (body.get("message") or body.get("error")).lower()
    assert Image.objects.count() == 0 and stored_files() == []


ACCEPTED = {
    "CMYK JPEG": corpus.cmyk_jpeg(),
    "16-bit PNG": corpus.png_rgb16(),
    "palette PNG with transparency": corpus.palette_png_with_transparency(),
    "grayscale JPEG": corpus.grey_jpeg(),
    "rotated phone JPEG with GPS": corpus.phone_jpeg(),
    "PNG with HTML inside": corpus.png_with_html(),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_a_valid_oddity_is_accepted_and_stored_clean(client, case):
    response = client.post(
        "/donate",
        {"images": [SimpleUploadedFile("x.bin", ACCEPTED[case])], "cc0": "on"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201, response.content
    for path in stored_files():
        data = path.read_bytes()
        assert b"<script" not in data and b"<html" not in data
        assert b"GPS" not in data and b"Exif" not in data


def test_a_png_whose_pixel_data_does_not_decode_is_refused_by_the_api_as_damaged(client):
    response = client.post(
        "/v1/donate", {"image": SimpleUploadedFile("broken.png", png_with_a_broken_pixel_stream())}
    )
    assert response.status_code == 422, response.content
    assert "damaged" in response.json()["error"]
    assert Image.objects.count() == 0 and stored_files() == []


def test_fifty_bit_flipped_jpegs_never_cause_a_server_error(client):
    for number, data in enumerate(corpus.bit_flipped(corpus.jpeg(), 50)):
        response = client.post(
            "/v1/donate",
            {"image": SimpleUploadedFile(f"{number}.jpg", data)},
            REMOTE_ADDR=f"10.1.{number}.1",
        )
        assert response.status_code in (200, 409, 422), response.content
    for image in Image.objects.all():
        assert private_file(image).exists()


def slow_jpegs() -> list[bytes]:
    """48-megapixel JPEGs of 64 refinement scans, the limit: the slowest we let through."""
    return [corpus.many_scans_jpeg(8000 - n, 6000, 64, refine=True) for n in range(3)]


def donated(client: Client, files: list[bytes]) -> list[dict]:
    """The outcome of each file of one donation through the form, from the result page's data."""
    uploads = [SimpleUploadedFile(f"{n}.jpg", data) for n, data in enumerate(files)]
    response = client.post("/donate", {"images": uploads, "cc0": "on"})
    assert response.status_code == 302, response.content
    return client.session[f"donations:{response['Location'].rstrip('/').rsplit('/', 1)[-1]}"]


@pytest.mark.django_db(transaction=True)
def test_hostile_jpegs_in_a_donation_cannot_keep_an_honest_upload_waiting(asks):
    endless = [corpus.many_scans_jpeg(8000, 6000, 10_000) + b"\x00" * n for n in (1, 2, 3)]
    decoding.warm_up()
    [pid] = decoding.worker_pids()
    idle = cpu_seconds(pid)
    finished: list[str] = []
    outcomes: dict = {}

    def hostile():
        try:
            outcomes["hostile"] = donated(Client(), endless + slow_jpegs())
            finished.append("hostile")
        finally:
            connection.close()

    def honest():
        try:
            photo = SimpleUploadedFile("photo.jpg", corpus.jpeg(seed=9))
            outcomes["honest"] = Client().post("/v1/donate", {"image": photo})
            finished.append("honest")
        finally:
            connection.close()

    threads = [threading.Thread(target=hostile)]
    threads[0].start()
    wait_for(lambda: cpu_seconds(pid) - idle >= 0.2, "the worker decodes a slow JPEG")
    threads.append(threading.Thread(target=honest))
    threads[1].start()
    wait_for(lambda: decoding._pool._turns.waiting() == 1, "the honest upload waits its turn")
    for thread in threads:
        thread.join(timeout=120)
    assert finished == ["honest", "hostile"]
    assert outcomes["honest"].status_code == 200, outcomes["honest"].content
    hostile_outcomes = outcomes["hostile"]
    assert [o["status"] for o in hostile_outcomes[:3]] == ["rejected"] * 3
    assert all("more than 64 scans" in o["message"] for o in hostile_outcomes[:3])
    assert [o["status"] for o in hostile_outcomes[3:]] == ["accepted"] * 3
    assert len(asks) == 4  # three slow JPEGs and the honest photo: the 10,000 scans never
    slow, honest_photo = [asks[0], *asks[2:]], asks[1]
    print(  # measured, not asserted: what the slowest files we accept hold the decoder for
        f"\nthe worker held each 64-scan JPEG {', '.join(f'{s:.2f}' for s in slow)} s, "
        f"the honest photo {honest_photo:.2f} s"
    )


@pytest.mark.django_db
def test_a_donation_that_used_up_its_decoding_time_defers_its_other_files(settings, asks):
    settings.IMAGE_REQUEST_DECODE_SECONDS = 0.5  # a slow JPEG alone takes longer
    outcomes = donated(Client(), slow_jpegs())
    assert [o["status"] for o in outcomes] == ["rejected"] * 3
    assert all("used up its time with our picture decoder" in o["message"] for o in outcomes)
    assert len(asks) == 1  # only the first reached the worker, which stopped at 0.5 s
    assert Image.objects.count() == 0 and stored_files() == []
