"""Donating through the web form and the JSON answer the page's script uses."""

import io
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from donations import decoding
from donations.ingest import ingest
from donations.models import Image, ImageLabel
from donations.storage import RENDITIONS
from labels.models import LabelSuggestion
from people.models import ApiToken, Voter
from tests.helpers import make_image, make_label, photo_bytes
from tests.media import stored_media

pytestmark = pytest.mark.django_db

DONATE = "/donate"


def upload(name="photo.jpg", data=None, content_type="image/jpeg"):
    return SimpleUploadedFile(name, data if data is not None else photo_bytes(), content_type)


def donate(client, *files, labels="", cc0=True, json=False, **extra):
    data = {"images": list(files) or [upload()], "labels": labels}
    if cc0:
        data["cc0"] = "on"
    headers = {"HTTP_ACCEPT": "application/json"} if json else {}
    return client.post(DONATE, data, **headers, **extra)


def test_the_donate_page_offers_labels_and_the_public_domain_dedication(client):
    make_label("dog")
    body = client.get(DONATE).content.decode()
    assert '<datalist id="label-names">' in body and 'value="dog"' in body
    assert 'name="cc0"' in body and "creativecommons.org/publicdomain/zero/1.0" in body
    assert 'enctype="multipart/form-data"' in body


def test_a_donation_with_labels_is_stored_pending_with_its_pairs_and_suggestions(client):
    dog = make_label("dog")
    make_label("eye", parent=dog)
    dog.synonyms.create(name="puppy")
    response = donate(client, upload(), labels="Puppy, hoverboard")
    assert response.status_code == 302
    image = Image.objects.get()
    assert image.status == "pending"
    assert [p.label.name for p in ImageLabel.objects.filter(image=image)] == ["dog"]
    assert LabelSuggestion.objects.get().name == "hoverboard"
    page = client.get(response["Location"]).content.decode()
    assert "1 accepted" in page and "hoverboard" in page


def settle_by_votes(pair: ImageLabel, answer: int) -> None:
    """Trusted voters from different networks answer until the pair settles."""
    from tests.helpers import make_voter, vote

    for n in range(12):
        vote(pair, make_voter(trusted=True, gold_correct=3), answer, f"198.51.{n}.0/24")
        pair.refresh_from_db()
        if pair.status != ImageLabel.Status.OPEN:
            return


def test_parts_are_asked_about_only_once_the_crowd_has_validated_their_label(client):
    from validation.models import Vote

    dog = make_label("dog")
    make_label("eye", parent=dog)
    make_label("tail", parent=dog)
    make_label("wing", parent=dog, active=False)
    client.post(DONATE, {"images": [upload()], "labels": "dog", "add_sublabels": "on", "cc0": "on"})
    (pair,) = ImageLabel.objects.all()
    assert (pair.label.full_name, pair.ask_parts) == ("dog", True)
    pair.image.decide("approve")
    settle_by_votes(pair, Vote.Answer.YES)
    assert pair.status == "validated"
    assert sorted(p.label.full_name for p in ImageLabel.objects.all()) == [
        "dog",
        "dog/eye",
        "dog/tail",
    ]
    assert ImageLabel.objects.get(pk=pair.pk).ask_parts is False
    assert ImageLabel.objects.filter(label__parent=dog, servable=True).count() == 2


def test_a_rejected_label_never_asks_about_its_parts(client):
    from validation.models import Vote

    dog = make_label("dog")
    make_label("eye", parent=dog)
    client.post(DONATE, {"images": [upload()], "labels": "dog", "add_sublabels": "on", "cc0": "on"})
    (pair,) = ImageLabel.objects.all()
    pair.image.decide("approve")
    settle_by_votes(pair, Vote.Answer.NO)
    assert pair.status == "rejected"
    assert ImageLabel.objects.count() == 1


def test_an_unlabelled_donation_is_allowed(client):
    assert donate(client, upload()).status_code == 302
    assert Image.objects.count() == 1 and ImageLabel.objects.count() == 0


def test_without_the_dedication_nothing_is_stored_and_the_reason_is_given(client):
    response = donate(client, upload(), cc0=False)
    assert response.status_code == 400
    assert "dedicate them to the public domain" in response.content.decode()
    assert Image.objects.count() == 0 and stored_media() == []


def test_one_submit_reports_accepted_duplicate_and_rejected_files(client):
    picture = photo_bytes()
    response = donate(
        client,
        upload("a.jpg", picture),
        upload("b.jpg", picture),
        upload("c.jpg", b"GIF89a" + b"\x00" * 50),
        follow=True,
    )
    page = response.content.decode()
    assert "1 accepted, 1 already here, 1 not accepted" in page
    assert "This file is a GIF" in page
    assert Image.objects.count() == 1


def test_the_json_answer_says_created_or_conflict(client):
    picture = photo_bytes()
    first = donate(client, upload(data=picture), json=True)
    assert first.status_code == 201 and first.json()["status"] == "accepted"
    second = donate(client, upload(data=picture), json=True)
    assert second.status_code == 409 and second.json()["status"] == "duplicate"
    bad = donate(client, upload(data=b"<html><script>alert(1)</script></html>"), json=True)
    assert bad.status_code == 422 and "we accept JPEG, PNG and WebP" in bad.json()["message"]


def test_more_than_twenty_files_are_refused_in_plain_words(client):
    response = donate(client, *[upload(f"{n}.jpg") for n in range(21)])
    assert response.status_code == 400
    assert "at most 20" in response.content.decode()
    assert Image.objects.count() == 0


def test_an_upload_over_the_size_limit_gets_413_and_stores_nothing(client, settings):
    settings.MAX_UPLOAD_MB = 1
    big = upload(data=b"\xff\xd8" + b"\x00" * (1024 * 1024 + 10))
    response = donate(client, big)
    assert response.status_code == 413
    assert "larger than 1 MB" in response.content.decode()
    assert Image.objects.count() == 0 and stored_media() == []


def test_donations_are_rate_limited_with_a_clear_429(client, settings):
    settings.DONATION_RATE = "2/h"
    assert donate(client, upload()).status_code == 302
    assert donate(client, upload()).status_code == 302
    response = donate(client, upload())
    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()


def test_anonymous_uploads_wait_when_the_pending_queue_is_full(client, settings):
    settings.MAX_PENDING_ANONYMOUS = 1
    assert donate(client, upload()).status_code == 302
    response = donate(client, upload())
    assert response.status_code == 503
    assert "cannot take more from anonymous donors" in response.content.decode()
    assert Image.objects.count() == 1


def test_my_donations_lists_only_this_visitors_pictures_with_their_status(client):
    donate(client, upload("mine.jpg"))
    other = Client()
    donate(other, upload("theirs.jpg"))
    page = client.get("/donate/mine").content.decode()
    assert "mine.jpg" in page and "theirs.jpg" not in page
    assert "Pending review" in page


def test_hostile_file_names_are_never_paths(client):
    donate(client, upload("../../etc/passwd\u202e.jpg"))
    image = Image.objects.get()
    assert "/" not in image.original_filename and "\u202e" not in image.original_filename
    # Stored under names made of its uuid alone, whatever the store.
    assert stored_media() == sorted(f"private/{image.file_name(kind)}" for kind in RENDITIONS)


@pytest.mark.django_db(transaction=True)
def test_two_identical_uploads_at_the_same_moment_store_one_image():
    picture = photo_bytes(320, 240)
    outcomes = []
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            outcomes.append(ingest(picture, filename="same.jpg").status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted", "duplicate"]
    assert Image.objects.count() == 1
    image = Image.objects.get()
    assert stored_media() == sorted(f"private/{image.file_name(kind)}" for kind in RENDITIONS), (
        "one set of renditions, no leftovers from the loser"
    )


def test_the_donate_page_answers_get_and_post_only(client):
    assert client.put(DONATE).status_code == 405


def test_result_pages_of_other_sessions_are_not_found(client):
    response = donate(client, upload())
    assert Client().get(response["Location"]).status_code == 404
    assert client.get(reverse("donations:result", args=["nothex"])).status_code == 404


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (user + system), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.django_db(transaction=True)
def test_killing_the_decoder_mid_upload_costs_one_answer_and_nothing_else(client, settings):
    settings.MAX_UPLOAD_MB = 64
    decoding.warm_up()
    noise = PILImage.frombytes("RGB", (4000, 3000), random.randbytes(4000 * 3000 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    responses = []

    def send():
        try:
            responses.append(
                donate(client, upload("noise.png", buffer.getvalue(), "image/png"), json=True)
            )
        finally:
            connection.close()

    busy_before = {pid: cpu_seconds(pid) for pid in decoding.worker_pids()}
    thread = threading.Thread(target=send)
    thread.start()
    # Kill the worker once it is busy with the noise (it has burnt CPU since the upload
    # began), not after a fixed sleep: on a loaded machine the upload may not be there yet.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        cpu_seconds(pid) - spent >= 0.2 for pid, spent in busy_before.items()
    ):
        time.sleep(0.02)
    for pid in decoding.worker_pids():
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=60)
    answer = responses[0]
    assert answer.status_code == 422, answer.content
    assert answer.json()["status"] == "rejected"
    assert Image.objects.count() == 0 and stored_media() == []
    follow_up = donate(client, upload("fine.jpg"), json=True)
    assert follow_up.status_code == 201, "the service answers the next upload at once"


def test_every_file_of_a_donation_form_counts_against_the_limit(client, settings):
    settings.DONATION_RATE = "4/h"
    files = [upload(f"p{n}.jpg", photo_bytes(color=(n * 40, 0, 0))) for n in range(5)]
    response = donate(client, *files)
    assert response.status_code == 429
    assert Image.objects.count() == 0
    assert donate(Client(), upload("one.jpg"), REMOTE_ADDR="203.0.113.5").status_code == 302


def test_one_network_cannot_fill_the_waiting_room_for_everyone(client, settings):
    settings.MAX_PENDING_PER_NETWORK, settings.MAX_PENDING_ANONYMOUS = 2, 100
    for n in range(2):
        donor = Client(REMOTE_ADDR=f"198.51.100.{n + 1}")
        assert (
            donate(donor, upload(f"{n}.jpg", photo_bytes(color=(n * 90, 9, 9)))).status_code == 302
        )
    response = donate(Client(REMOTE_ADDR="198.51.100.77"), upload("3.jpg"))
    assert response.status_code == 503
    assert "from your network" in response.content.decode()
    elsewhere = Client(REMOTE_ADDR="203.0.113.1")
    assert donate(elsewhere, upload("4.jpg", photo_bytes(color=(1, 200, 1)))).status_code == 302
    assert set(Image.objects.values_list("donor_network", flat=True)) == {
        "198.51.100.0/24",
        "203.0.113.0/24",
    }


def test_trusted_donors_are_not_held_by_the_caps_and_a_fresh_account_is(settings):
    settings.MAX_PENDING_PER_NETWORK, settings.MAX_PENDING_ANONYMOUS = 1, 1
    make_image(status=Image.Status.PENDING, donor_network="198.51.100.0/24")
    voter, token = Voter.create_with_token(trusted=True)
    response = Client().post(
        "/v1/donate",
        {"image": upload("t.jpg", photo_bytes(color=(3, 3, 240)))},
        HTTP_X_VOTER_TOKEN=token,
        REMOTE_ADDR="198.51.100.5",
    )
    assert response.status_code == 200
    _, fresh = Voter.create_with_token()
    refused = Client().post(
        "/v1/donate",
        {"image": upload("f.jpg", photo_bytes(color=(240, 3, 3)))},
        HTTP_X_VOTER_TOKEN=fresh,
        REMOTE_ADDR="198.51.100.6",
    )
    assert refused.status_code == 503 and "your network" in refused.json()["error"]
    member = User.objects.create_user("member", password="x" * 20)
    _, plaintext = ApiToken.issue(member, ["donate"])
    account = Client().post(
        "/v1/donate",
        {"image": upload("a.jpg", photo_bytes(color=(3, 240, 3)))},
        HTTP_AUTHORIZATION=f"Bearer {plaintext}",
        REMOTE_ADDR="198.51.100.7",
    )
    assert account.status_code == 503, "signing up costs nothing: an account alone is no record"
    Voter.objects.filter(user=member).update(trusted=True)
    trusted = Client().post(
        "/v1/donate",
        {"image": upload("b.jpg", photo_bytes(color=(3, 240, 3)))},
        HTTP_AUTHORIZATION=f"Bearer {plaintext}",
        REMOTE_ADDR="198.51.100.7",
    )
    assert trusted.status_code == 200, trusted.content


def test_only_the_donor_withdraws_a_picture_and_only_while_it_waits(client):
    donate(client, upload("mine.jpg"))
    image = Image.objects.get()
    stranger = Client(REMOTE_ADDR="203.0.113.9")
    refused = stranger.post(f"/donate/{image.uuid}/withdraw", HTTP_ACCEPT="application/json")
    assert refused.status_code == 409 and "Only the donor" in refused.json()["error"]
    image.decide("approve")
    late = client.post(f"/donate/{image.uuid}/withdraw", HTTP_ACCEPT="application/json")
    assert late.status_code == 409 and "already public" in late.json()["error"]
    image.decide("quarantine")
    image.decide("reopen")
    response = client.post(f"/donate/{image.uuid}/withdraw", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert not Image.objects.exists()


def test_a_donor_sees_thumbnails_of_their_pending_pictures_and_nobody_else_does(client):
    donate(client, upload("mine.jpg"))
    image = Image.objects.get()
    mine = client.get("/donate/mine").content.decode()
    url = f"/donate/{image.uuid}/thumb"
    assert url in mine
    response = client.get(url)
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    assert Client().get(url).status_code == 404
    assert Client(REMOTE_ADDR="203.0.113.4").get(url).status_code == 404


def test_an_empty_file_is_named_in_the_results_and_the_others_are_donated(client):
    response = donate(client, upload("good.jpg"), upload("empty.jpg", b""), follow=True)
    page = response.content.decode()
    assert "1 accepted, 1 not accepted" in page
    assert "empty.jpg" in page
    assert Image.objects.count() == 1


def test_a_donor_no_longer_sees_a_picture_a_moderator_took_aside(client):
    donate(client, upload("mine.jpg"))
    image = Image.objects.get()
    image.decide("quarantine")
    assert client.get(f"/donate/{image.uuid}/thumb").status_code == 404


class TestLabelsPerPhoto:
    def test_a_donor_labels_each_photo_of_a_donation_on_the_result_page(self, client):
        make_label("dog"), make_label("cat"), make_label("grass")
        response = donate(client, upload("a.jpg"), upload("b.jpg"), labels="grass")
        result = client.get(response["Location"]).content.decode()
        batch = response["Location"].rsplit("/", 1)[1]
        assert result.count("Labels for this photo") == 2
        first, second = Image.objects.order_by("pk")
        for image, name in ((first, "dog"), (second, "cat, kangaroo-ish")):
            added = client.post(f"/donate/{image.uuid}/labels", {"labels": name, "batch": batch})
            assert added.status_code == 302 and added["Location"] == f"/donate/result/{batch}"
        names = lambda image: sorted(image.pairs.values_list("label__name", flat=True))  # noqa: E731
        assert names(first) == ["dog", "grass"] and names(second) == ["cat", "grass"]
        assert LabelSuggestion.objects.filter(name="kangaroo-ish").exists()
        page = client.get(f"/donate/result/{batch}").content.decode()
        assert "Labels: grass, dog" in page and "Labels: grass, cat" in page

    def test_only_the_donor_labels_their_picture_and_never_a_rejected_one(self, client):
        make_label("dog")
        donate(client, upload("mine.jpg"))
        image = Image.objects.get()
        stranger = Client(REMOTE_ADDR="203.0.113.9")
        refused = stranger.post(f"/donate/{image.uuid}/labels", {"labels": "dog"})
        assert refused.status_code == 404 and not image.pairs.exists()
        image.decide("reject")
        late = client.post(f"/donate/{image.uuid}/labels", {"labels": "dog"})
        assert late.status_code == 404

    @pytest.mark.parametrize("text", ["", " , ", "x" * 101, "dog\x00"])
    def test_empty_or_bad_labels_are_refused_in_words(self, client, text):
        make_label("dog")
        donate(client, upload("mine.jpg"))
        image = Image.objects.get()
        response = client.post(
            f"/donate/{image.uuid}/labels", {"labels": text}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 400 and response.json()["error"]
        assert not image.pairs.exists()
