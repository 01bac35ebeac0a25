"""Releases: cut once, served the same ever after, minus what has been taken down since.

Exports read through a connection of their own, so these tests commit their data.
"""

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from donations.models import Image, ImageLabel, Report
from exports import export as export_module
from exports.models import Release, ReleaseEntry, Revocation
from exports.query import LabelQuery
from exports.releases import ReleaseError, cut_release, release_export
from labels.models import Label
from tests.helpers import (
    cast,
    make_image,
    make_label,
    make_pair,
    make_voter,
    photo_bytes,
    real_public_image,
)
from tests.test_admin_permissions import staff_with
from tests.test_export import body, by_uuid, store_master, unpacked, votes

pytestmark = pytest.mark.django_db(transaction=True)

FORMATS = ["json", "jsonl", "csv", "coco", "tar"]
PURGE_SCRIPT = Path(__file__).resolve().parent.parent / "exports" / "purge_revoked.py"


@pytest.fixture
def pictures():
    """Two dogs (one also a cat) and a cat, with votes and master files."""
    dog, cat = make_label("dog"), make_label("cat")
    eye = make_label("eye", parent=dog)
    a, b, c = make_image(), make_image(format=Image.Format.PNG), make_image()
    pairs = {
        "a_dog": votes(make_pair(dog, image=a), 3, 0),
        "a_eye": votes(make_pair(eye, image=a), 2, 1),
        "b_dog": votes(make_pair(dog, image=b), 4, 1),
        "b_cat": votes(make_pair(cat, image=b), 1, 0),
        "c_cat": votes(make_pair(cat, image=c), 1, 2),
    }
    files = {"a": photo_bytes(), "b": photo_bytes(fmt="PNG"), "c": photo_bytes()}
    for name, image in (("a", a), ("b", b), ("c", c)):
        store_master(image, files[name])
        image.refresh_from_db()
    return {"a": a, "b": b, "c": c, "dog": dog, "cat": cat, "files": files, **pairs}


def cut(slug="2027-01", query="dog | cat", **options) -> Release:
    """A release of every pair (status any): these pictures' votes settle nothing."""
    options.setdefault("status", "any")
    return cut_release(slug, LabelQuery.parse(query), **options)


def download(client, **params) -> bytes:
    response = client.get("/v1/export", params)
    assert response.status_code == 200, response.content
    return body(response)


def downloads(client, **params) -> dict[str, bytes]:
    return {name: download(client, format=name, **params) for name in FORMATS}


def comparable(name: str, content: bytes):
    """A format's content without what differs between two downloads of one dataset."""
    if name == "coco":
        coco = json.loads(content)
        for key in ("date_created", "year", "release"):
            coco["info"].pop(key, None)
        return coco
    if name == "tar":
        _, members = unpacked(content)  # the top folder is named after the export
        for name in ("QUALITY.md", "quality.json"):  # a release's only
            members.pop(name, None)
        manifest = members.pop("MANIFEST").decode().splitlines()
        kept = [
            line
            for line in manifest
            if not line.startswith(("# snapshot", "# release"))
            and not line.endswith(("QUALITY.md", "quality.json"))
        ]
        return members, kept
    return content


class TestCutting:
    def test_a_release_serves_what_the_export_held_when_it_was_cut_in_every_format(
        self, client, pictures
    ):
        before = downloads(client, query="dog | cat", min_probability="0.5", status="any")
        release = cut(min_probability=0.5)
        assert (release.images, release.pairs) == (2, 4)  # c's cat (1 of 3) does not pass
        # Then everything changes: votes, a new dog, a renamed label, a new label on a.
        ImageLabel.objects.filter(pk=pictures["a_dog"].pk).update(num_yes=77, probability=0.1)
        newcomer = make_image()
        store_master(newcomer, photo_bytes())
        votes(make_pair(pictures["dog"], image=newcomer), 3, 0)
        Label.objects.filter(pk=pictures["dog"].pk).update(name="hound")
        votes(make_pair("grass", image=pictures["a"]), 2, 0)
        after = downloads(client, release="2027-01", status="any")
        for name in FORMATS:
            assert comparable(name, after[name]) == comparable(name, before[name]), name

    def test_by_default_a_release_chooses_its_images_by_settled_pairs(self, client):
        """dog & ~cat: a dog validated with cat rejected is in; a rejected dog is not."""
        dog, cat = make_label("dog"), make_label("cat")
        kept, dropped = make_image(), make_image()
        make_pair(dog, image=kept, status="validated", num_yes=3, probability=1.0)
        make_pair(cat, image=kept, status="rejected", num_no=3)
        make_pair(dog, image=dropped, status="rejected", num_no=3)
        store_master(kept, photo_bytes())
        store_master(dropped, photo_bytes())
        live = json.loads(download(client, query="dog & ~cat", status="validated"))
        release = cut_release("2027-02", LabelQuery.parse("dog & ~cat"))
        assert release.status == "validated" and release.images == 1
        frozen = json.loads(download(client, release="2027-02", status="any"))
        assert [e["uuid"] for e in frozen] == [e["uuid"] for e in live] == [str(kept.uuid)]
        assert {v["label"]: v["status"] for v in frozen[0]["validations"]} == {
            "dog": "validated",
            "cat": "rejected",
        }

    def test_the_release_records_its_query_thresholds_counts_and_hashes(self, pictures):
        release = cut(min_probability=0.5, notes="The first one.")
        release.refresh_from_db()
        assert release.query == "dog | cat" and release.min_probability == 0.5
        assert release.notes == "The first one." and release.snapshot is not None
        assert {(label.label, label.sublabel): label.pairs for label in release.labels.all()} == {
            ("dog", ""): 2,
            ("dog", "eye"): 1,
            ("cat", ""): 1,
        }
        sha = {
            entry.image_uuid: entry.master_sha256
            for entry in ReleaseEntry.objects.filter(release=release)
        }
        assert sha == {
            pictures[n].uuid: hashlib.sha256(pictures["files"][n]).hexdigest() for n in "ab"
        }
        sizes = sum(len(pictures["files"][n]) for n in "ab")
        assert (release.master_bytes, release.missing_files) == (sizes, 0)

    def test_an_image_matched_without_a_passing_pair_keeps_its_place(self, client, pictures):
        lone = make_image()
        cut("lonely", query="~dog & ~cat")
        entries = json.loads(download(client, release="lonely"))
        assert [(e["uuid"], e["validations"]) for e in entries] == [(str(lone.uuid), [])]

    def test_the_tar_names_the_release_in_its_manifest_and_file_name(self, client, pictures):
        cut()
        response = client.get("/v1/export", {"release": "2027-01", "format": "tar"})
        assert 'filename="imagemonkey-release-2027-01.tar"' in response["Content-Disposition"]
        top, members = unpacked(body(response))
        assert top == "imagemonkey-release-2027-01"
        manifest = members["MANIFEST"].decode()
        assert "# release: 2027-01" in manifest
        assert '# query: "dog | cat"' in manifest

    def test_a_release_id_is_taken_once_and_must_be_safe(self, pictures):
        cut()
        with pytest.raises(ReleaseError, match="exists already"):
            cut()
        for bad in ["../x", "2027 01", "A", "x/y", "-x", "", "a" * 41]:
            with pytest.raises(CommandError):
                call_command("cut_release", bad, query="dog", status="any")
        assert Release.objects.count() == 1

    def test_nothing_to_release_is_refused(self, pictures):
        with pytest.raises(ReleaseError, match="matches no public image"):
            cut(query="dog & cat & ~dog")
        assert not Release.objects.exists() and not ReleaseEntry.objects.exists()

    def test_the_command_cuts_one(self, pictures):
        out = io.StringIO()
        call_command(
            "cut_release",
            "2027-02",
            "--query=cat",
            "--min-probability=0.5",
            "--status=any",
            "--notes=cats",
            stdout=out,
        )
        assert "release 2027-02: 1 images, 2 pairs" in out.getvalue()
        with pytest.raises(CommandError, match="unknown label"):
            call_command("cut_release", "2027-03", query="wombat", status="any")
        with pytest.raises(CommandError, match="exists already"):
            call_command("cut_release", "2027-02", query="cat", status="any")

    def test_reading_a_release_runs_in_one_snapshot_and_closes_its_connection(
        self, client, pictures
    ):
        cut()
        response = client.get("/v1/export", {"release": "2027-01", "format": "coco"})
        stream = iter(response.streaming_content)
        head = next(stream)
        pictures["a"].decide("hide")  # meanwhile: revoked, but not in this snapshot
        coco = json.loads(head + b"".join(stream))
        assert {image["id"] for image in coco["images"]} == {pictures[n].pk for n in "abc"}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [export_module.APPLICATION_NAME],
            )
            assert cursor.fetchone()[0] <= 1  # closing; test_export checks it settles to 0

    def test_a_release_is_read_in_the_order_of_its_index_without_sorting(self, pictures):
        """Sorting a release's rows kept its first byte back by a second at 1M pairs."""
        release = cut()
        frozen = release_export(release, "/v1/donation/")
        with export_module.snapshot_for(frozen) as snap:
            assert snap.one(export_module.Sql("SHOW enable_sort")) == ("off",)
        live = export_module.Export(query=LabelQuery.parse("dog"))
        with export_module.snapshot_for(live) as snap:
            assert snap.one(export_module.Sql("SHOW enable_sort")) == ("on",)


class TestParameters:
    @pytest.mark.parametrize(
        ("params", "status", "message"),
        [
            ({"release": "2099-01"}, 404, "release: there is no release '2099-01'"),
            ({"release": "2027-01", "query": "dog"}, 400, "leave out query"),
            ({"release": "2027-01", "min_probability": "0.5"}, 400, "leave out min_probability"),
            ({"release": "x" * 41}, 400, "release:"),
            ({"release": "2027-01", "format": "xml"}, 400, "format:"),
        ],
    )
    def test_bad_release_parameters_answer_a_reason(
        self, client, pictures, params, status, message
    ):
        cut()
        for path in ("/v1/export", "/v1/export/count"):
            response = client.get(path, params)
            assert response.status_code == status, response.content
            assert message in response.json()["error"]

    def test_the_count_of_a_release(self, client, pictures):
        cut()
        assert client.get("/v1/export/count", {"release": "2027-01"}).json() == {"images": 3}

    def test_a_query_is_still_required_without_a_release(self, client, pictures):
        response = client.get("/v1/export", {"format": "csv"})
        assert response.status_code == 400
        assert "query: a query is required" in response.json()["error"]


class TestTakedowns:
    def test_a_hidden_picture_is_revoked_purged_from_a_copy_and_left_out_of_the_release(
        self, client, pictures, tmp_path, live_server
    ):
        cut()
        # A user downloads the release and unpacks it.
        tar = download(client, release="2027-01", format="tar", status="any", layout="multi")
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            t.extractall(tmp_path, filter="data")
        a, b = pictures["a"], pictures["b"]
        copy = sorted(
            p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()
        )
        assert f"imagemonkey-release-2027-01/images/{b.uuid}.png" in copy
        # Later the picture is taken down after reports.
        Image.objects.get(pk=b.pk).decide("hide")
        lines = client.get("/v1/revocations.jsonl")
        assert lines["Content-Type"] == "application/x-ndjson"
        assert lines["Cache-Control"] == "public, max-age=300"
        (entry,) = [json.loads(line) for line in body(lines).decode().splitlines()]
        assert entry["uuid"] == str(b.uuid) and entry["reason"] == "reports"
        assert entry["sha256"] == {"master": hashlib.sha256(pictures["files"]["b"]).hexdigest()}
        # The standalone script, with plain python3 and no Django, fetches the list and purges.
        run = subprocess.run(
            [
                sys.executable,
                "-I",
                str(PURGE_SCRIPT),
                str(tmp_path),
                "--revocations",
                f"{live_server.url}/v1/revocations.jsonl",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={},
        )
        assert "removed 1 file(s)" in run.stdout, run.stdout  # each image once (multi)
        left = sorted(
            p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()
        )
        assert left == [name for name in copy if str(b.uuid) not in name]
        kept = tmp_path / "imagemonkey-release-2027-01" / "images" / f"{a.uuid}.jpg"
        assert kept.read_bytes() == pictures["files"]["a"]
        # The release no longer holds it, in any format.
        for name, content in downloads(client, release="2027-01", status="any").items():
            assert str(b.uuid).encode() not in content, name
            assert str(a.uuid).encode() in content, name

    def test_the_display_and_thumbnail_hashes_are_listed_too(self, client):
        image = real_public_image("dog")
        Image.objects.get(pk=image.pk).decide("quarantine")
        revocation = Revocation.objects.get(image_uuid=image.uuid)
        assert set(revocation.hashes) == {"master", "display", "thumb"}
        assert len(set(revocation.hashes.values())) == 3
        assert revocation.reason == "moderation"

    def test_the_reason_class_follows_the_decision_and_the_reports(self):
        hidden, rejected, claimed = make_image(), make_image(), make_image()
        Report.objects.create(image=claimed, reporter=make_voter(), reason="copyright")
        hidden.decide("hide")
        rejected.decide("reject")
        claimed.decide("quarantine")
        reasons = dict(Revocation.objects.values_list("image_uuid", "reason"))
        assert reasons == {
            hidden.uuid: "reports",
            rejected.uuid: "moderation",
            claimed.uuid: "copyright",
        }

    def test_a_picture_never_public_is_not_revoked(self):
        pending = make_image(status=Image.Status.PENDING)
        pending.decide("reject")
        assert not Revocation.objects.exists()

    def test_a_revocation_stays_when_the_picture_is_approved_again(self, client, pictures):
        cut()
        image = Image.objects.get(pk=pictures["a"].pk)
        image.decide("hide")
        image.decide("approve")
        image.decide("quarantine")  # a second takedown adds no second line
        assert Revocation.objects.filter(image_uuid=image.uuid).count() == 1
        Image.objects.get(pk=image.pk).decide("approve")
        entries = by_uuid(json.loads(download(client, release="2027-01")))
        assert str(image.uuid) not in entries
        assert str(image.uuid) in by_uuid(json.loads(download(client, query="dog")))

    def test_manage_py_purge_revoked_removes_by_content(self, pictures, tmp_path):
        (tmp_path / "renamed.jpg").write_bytes(pictures["files"]["a"])
        (tmp_path / "kept.png").write_bytes(pictures["files"]["b"])
        pictures["a"].decide("reject")
        out = io.StringIO()
        call_command("purge_revoked", str(tmp_path), "--dry-run", stdout=out)
        assert "would remove 1 file(s), 1 kept" in out.getvalue()
        assert (tmp_path / "renamed.jpg").exists()
        call_command("purge_revoked", str(tmp_path), stdout=io.StringIO())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.png"]
        with pytest.raises(CommandError, match="not a folder"):
            call_command("purge_revoked", str(tmp_path / "nothing"))

    def test_the_script_refuses_a_list_that_is_not_one(self, tmp_path):
        bad = tmp_path / "list.jsonl"
        bad.write_text('{"uuid": "x"}\n')
        run = subprocess.run(
            [sys.executable, "-I", str(PURGE_SCRIPT), str(tmp_path), "--revocations", str(bad)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 1 and "line 1" in run.stderr

    def test_the_script_is_served_for_download(self, client):
        response = client.get("/releases/purge_revoked.py")
        assert response.status_code == 200
        assert response.content == PURGE_SCRIPT.read_bytes()
        assert client.head("/releases/purge_revoked.py").status_code == 200
        assert client.head("/releases").status_code == 200
        assert client.post("/releases").status_code == 405


class TestListingAndChanges:
    def test_v1_releases_lists_them_newest_first_with_their_changes(self, client, pictures):
        cut("2027-01", query="dog")  # a and b with all their pairs: b's cat too
        ImageLabel.objects.filter(pk=pictures["b_dog"].pk).update(num_yes=9, probability=0.9)
        cut("2027-02", query="dog | cat", notes="cats too")
        listed = client.get("/v1/releases").json()
        assert [r["id"] for r in listed] == ["2027-02", "2027-01"]
        newest = listed[0]
        assert newest["previous"] == "2027-01" and newest["notes"] == "cats too"
        # b's dog changed; c's cat is new.
        assert newest["changes_since_previous"] == {"added": 1, "removed": 0, "changed": 1}
        assert newest["images"] == 3 and newest["estimated_tar_bytes"] > 0
        assert {"label": "cat", "sublabel": "", "pairs": 2} in newest["labels"]

    def test_the_changes_are_json_lines_of_pairs(self, client, pictures):
        cut("2027-01", query="dog | cat")
        ImageLabel.objects.filter(pk=pictures["b_dog"].pk).update(num_yes=9)
        ImageLabel.objects.filter(pk=pictures["a_eye"].pk).delete()
        cut("2027-02", query="dog")
        response = client.get("/v1/releases/2027-02/changes", {"since": "2027-01"})
        assert response["Content-Type"] == "application/x-ndjson"
        content = body(response)
        lines = [json.loads(line) for line in content.decode().splitlines()]
        changes = {
            (line["change"], line["uuid"], line["label"], line["sublabel"]) for line in lines
        }
        a, b, c = (str(pictures[n].uuid) for n in "abc")
        assert changes == {
            ("removed", a, "dog", "eye"),
            ("changed", b, "dog", ""),
            ("removed", c, "cat", ""),
        }
        changed = next(line for line in lines if line["change"] == "changed")
        assert (changed["before"]["num_yes"], changed["after"]["num_yes"]) == (4, 9)
        removed = next(line for line in lines if line["label"] == "cat")
        assert removed["after"] is None and removed["before"]["num_yes"] == 1
        # Without ?since, against the previous release; the other way round, added.
        default = body(client.get("/v1/releases/2027-02/changes"))
        assert default == content
        back = body(client.get("/v1/releases/2027-01/changes", {"since": "2027-02"})).decode()
        assert [json.loads(line)["change"] for line in back.splitlines()].count("added") == 2

    def test_the_first_release_changes_from_nothing(self, client, pictures):
        release = cut()
        lines = body(client.get("/v1/releases/2027-01/changes")).decode().splitlines()
        changes = [json.loads(line) for line in lines]
        assert len(changes) == release.pairs
        assert {change["change"] for change in changes} == {"added"}
        assert all(change["before"] is None for change in changes)

    def test_revoked_pictures_leave_the_changes_too(self, client, pictures):
        cut("2027-01", query="dog")
        ImageLabel.objects.filter(pk=pictures["b_dog"].pk).update(num_yes=9)
        cut("2027-02", query="dog | cat")
        pictures["c"].decide("hide")
        content = body(client.get("/v1/releases/2027-02/changes"))
        assert str(pictures["c"].uuid).encode() not in content
        assert str(pictures["b"].uuid).encode() in content

    @pytest.mark.parametrize(
        ("url", "status", "message"),
        [
            ("/v1/releases/nope/changes", 404, "there is no release 'nope'"),
            ("/v1/releases/2027-01/changes?since=nope", 404, "since: there is no release"),
            ("/v1/releases/2027-01/changes?since=a%2Fb", 404, "since: there is no release"),
            ("/v1/releases/a%00b/changes", 404, "there is no release"),
            ("/v1/export?release=..%2Fx", 404, "there is no release"),
        ],
    )
    def test_bad_changes_requests_answer_a_reason(self, client, pictures, url, status, message):
        cut()
        response = client.get(url)
        assert response.status_code == status
        assert message in response.json()["error"]

    def test_the_page_lists_notes_counts_sizes_downloads_and_changes(self, client, pictures):
        cut("2027-01", query="dog", notes="Dogs <only>.")
        cut("2027-02", query="dog | cat")
        response = client.get("/releases")
        page = response.content.decode()
        assert "Dogs &lt;only&gt;." in page
        assert "/v1/export?release=2027-02&amp;format=tar" in page
        assert "1 pair added, 0 removed, 0 changed" in page
        assert "Size of the tar (estimate)" in page
        assert "/v1/revocations.jsonl" in page and "purge_revoked.py" in page

    def test_the_page_runs_a_fixed_number_of_queries(
        self, client, pictures, django_assert_max_num_queries
    ):
        for n in range(4):
            cut(f"2027-0{n + 1}", query="dog")
        with django_assert_max_num_queries(6):
            assert client.get("/releases").status_code == 200

    def test_reading_releases_writes_nothing(self, client, pictures):
        cut("2027-01", query="dog")
        cut("2027-02", query="dog | cat")
        pictures["c"].decide("hide")
        counted = (Release, ReleaseEntry, Revocation)
        before = [model.objects.count() for model in counted]
        for url in [
            "/releases",
            "/v1/releases",
            "/v1/revocations.jsonl",
            "/v1/releases/2027-02/changes",
            "/v1/export?release=2027-02&format=tar",
        ]:
            response = client.get(url)
            assert response.status_code == 200, url
            body(response) if response.streaming else response.content
        assert [model.objects.count() for model in counted] == before


class TestAdmin:
    ADD = "/admin/exports/release/add/"

    def form(self, **fields):
        return {
            "slug": "2027-05",
            "query": "dog",
            "min_probability": "0.5",
            "min_confidence": "0",
            "status": "any",
            "notes": "From the admin.",
            **fields,
        }

    def test_only_an_account_allowed_to_add_releases_cuts_one(self, pictures):
        viewer = staff_with("exports.view_release")
        assert viewer.get(self.ADD).status_code == 403
        assert viewer.post(self.ADD, self.form()).status_code == 403
        assert not Release.objects.exists()
        curator = staff_with("exports.view_release", "exports.add_release")
        response = curator.post(self.ADD, self.form())
        assert response.status_code == 302, response.content[:2000]
        release = Release.objects.get()
        assert (release.slug, release.query, release.min_probability) == ("2027-05", "dog", 0.5)
        assert release.notes == "From the admin." and release.images == 2

    def test_the_add_form_explains_what_it_refuses(self, pictures):
        curator = staff_with("exports.view_release", "exports.add_release")
        for fields, message in [
            ({"slug": "../etc"}, "Lower-case letters and digits"),
            ({"query": "dgo"}, "unknown label: dgo"),
            ({"query": "dog & ~dog"}, "matches no public image"),
        ]:
            response = curator.post(self.ADD, self.form(**fields))
            assert response.status_code == 200
            assert message in response.content.decode()
        assert not Release.objects.exists()

    def test_a_release_is_read_only_and_staff_cannot_delete_it(self, pictures):
        release = cut()
        staff = staff_with(
            "exports.view_release", "exports.change_release", "exports.delete_release"
        )
        change = f"/admin/exports/release/{release.pk}/change/"
        page = staff.get(change)
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        assert staff.post(change, self.form(slug="renamed")).status_code == 403
        delete = f"/admin/exports/release/{release.pk}/delete/"
        assert staff.post(delete, {"post": "yes"}).status_code == 403
        release.refresh_from_db()
        assert release.slug == "2027-01"

    def test_revocations_are_listed_and_never_edited(self, pictures):
        pictures["a"].decide("hide")
        staff = staff_with(
            "exports.view_revocation", "exports.add_revocation", "exports.delete_revocation"
        )
        assert staff.get("/admin/exports/revocation/").status_code == 200
        assert staff.get("/admin/exports/revocation/add/").status_code == 403
        revocation = Revocation.objects.get()
        delete = f"/admin/exports/revocation/{revocation.pk}/delete/"
        assert staff.post(delete, {"post": "yes"}).status_code == 403
        assert Revocation.objects.count() == 1


class TestQuality:
    @pytest.fixture
    def gold(self, pictures):
        """Four gold dog pairs the crowd settled: three validated (one wrongly), one rejected."""
        dog = pictures["dog"]
        voter = make_voter()
        made = []
        for status, answer, said in [
            ("validated", True, True),
            ("validated", True, True),
            ("validated", False, True),
            ("rejected", False, False),
        ]:
            pair = make_pair(dog, image=make_image())
            cast(pair, voter, said)
            ImageLabel.objects.filter(pk=pair.pk).update(
                status=status, is_gold=True, gold_answer=answer
            )
            made.append(pair)
        return made

    def test_precision_is_estimated_from_the_gold_the_crowd_settled(self, pictures, gold):
        release = cut(query="dog")
        release.refresh_from_db()
        dog = next(
            row
            for row in release.quality["labels"]
            if row["label"] == "dog" and not row["sublabel"]
        )
        assert dog["validated_precision"]["gold_pairs"] == 3
        assert dog["validated_precision"]["agreeing"] == 2
        assert dog["validated_precision"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
        low, high = dog["validated_precision"]["interval_95"]
        assert 0 < low < 2 / 3 < high < 1
        assert dog["rejected_precision"]["precision"] == 1.0
        assert dog["gold_votes"] == {"answered": 4, "right": 3, "accuracy": 0.75}
        eye = next(row for row in release.quality["labels"] if row["sublabel"] == "eye")
        assert eye["validated_precision"]["precision"] is None  # no gold: no claim
        # Four gold pairs with one voter each; a's dog had 3 voters, b's 5, all from one /24.
        assert dog["pairs_by_voters"] == {"0": 0, "1": 4, "2": 0, "3": 1, "4": 0, "5+": 1}
        assert dog["pairs_by_networks"] == {"0": 4, "1": 2, "2": 0, "3": 0, "4": 0, "5+": 0}
        calibration = release.quality["calibration"]
        assert sum(row["gold_pairs"] for row in calibration) == 4
        assert sum(row["answer_yes"] for row in calibration) == 2
        assert all(0 <= row["confidence"][0] < row["confidence"][1] <= 1 for row in calibration)

    def test_the_report_is_in_the_tar_and_on_the_page(self, client, pictures, gold):
        cut(query="dog")
        _, members = unpacked(download(client, release="2027-01", format="tar"))
        assert json.loads(members["quality.json"])["release"] == "2027-01"
        markdown = members["QUALITY.md"].decode()
        assert "| dog | 6 |" in markdown and "67% (" in markdown and "2 of 3 gold" in markdown
        assert (
            "## Independent voters per pair" in markdown
            and "## Calibration of confidence" in markdown
        )
        assert hashlib.sha256(members["QUALITY.md"]).hexdigest() in members["MANIFEST"].decode()
        page = client.get("/releases").content.decode()
        assert "Quality per label" in page and "67 %" in page and "no gold" in page
