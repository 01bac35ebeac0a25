"""parquet, hf and webdataset: each export loaded by the reader its users will load it with."""

# The fixtures imported from tests.test_export are named again by the tests that use them.
# ruff: noqa: F811

import collections
import hashlib
import io
import json
import os
import tarfile
import tempfile

import pytest

# The readers must never reach for the Hub, nor write into the home folder.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-home-"))

import datasets  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import webdataset  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from donations.models import Image, ImageLabel  # noqa: E402
from exports.query import LabelQuery  # noqa: E402
from exports.releases import cut_release  # noqa: E402
from tests.helpers import make_image, make_pair, photo_bytes  # noqa: E402
from tests.test_export import (  # noqa: E402, F401
    body,
    data,
    get,
    manifest_hashes,
    settle,
    store_master,
    unpacked,
)

pytestmark = pytest.mark.django_db(transaction=True)
datasets.disable_progress_bars()


@pytest.fixture
def files(data):
    """Master files for a (dog) and b (dog, and cat rejected); c's file is missing."""
    files = {"a": photo_bytes(), "b": photo_bytes(fmt="PNG")}
    store_master(data.a, files["a"])
    store_master(data.b, files["b"])
    return files


def download(client, **params) -> bytes:
    response = get(client, **params)
    assert response.status_code == 200, response.content
    return body(response)


def extract(content: bytes, into) -> tuple[str, dict[str, bytes]]:
    """The archive unpacked under `into`: its top folder's path, and its members."""
    top, members = unpacked(content)
    with tarfile.open(fileobj=io.BytesIO(content)) as archive:
        archive.extractall(into, filter="data")
    return str(into / top), members


class TestParquet:
    def test_pyarrow_reads_images_and_multi_hot_targets(self, client, data, files):
        content = download(
            client, query="dog | cat", format="parquet", layout="multi", negatives="true"
        )
        table = pq.read_table(io.BytesIO(content))
        rows = {row["uuid"]: row for row in table.to_pylist()}
        assert set(rows) == {str(data.a.uuid), str(data.b.uuid)}
        a, b = rows[str(data.a.uuid)], rows[str(data.b.uuid)]
        assert a["image"] == {"bytes": files["a"], "path": f"{data.a.uuid}.jpg"}
        assert b["image"]["bytes"] == files["b"]
        assert (a["labels"], a["negatives"], a["target"]) == (["dog"], [], [1, None])
        assert (b["labels"], b["negatives"], b["target"]) == (["dog"], ["cat"], [1, 0])
        about = json.loads(pq.read_metadata(io.BytesIO(content)).metadata[b"imagemonkey"])
        assert about["query"] == "dog | cat" and about["rows"] == 2
        assert about["license"].startswith("CC0 1.0")

    def test_datasets_reads_the_image_and_class_columns_as_features(
        self, client, data, files, tmp_path
    ):
        settle(data.b_cat, status=ImageLabel.Status.VALIDATED)  # b: dog and cat, so skipped
        extra = make_image()
        store_master(extra, photo_bytes())
        settle(make_pair("cat", image=extra), status=ImageLabel.Status.VALIDATED)
        path = tmp_path / "dogs.parquet"
        path.write_bytes(download(client, query="dog | cat", format="parquet", split="80/10/10"))
        loaded = datasets.load_dataset(
            "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
        )
        assert isinstance(loaded.features["image"], datasets.Image)
        assert loaded.features["label"].names == ["dog", "cat"]  # the query's order
        by_uuid = {row["uuid"]: row for row in loaded}
        assert set(by_uuid) == {str(data.a.uuid), str(extra.uuid)}
        assert by_uuid[str(data.a.uuid)]["label"] == 0 and by_uuid[str(extra.uuid)]["label"] == 1
        assert isinstance(by_uuid[str(data.a.uuid)]["image"], PILImage.Image)
        splits = {
            e["uuid"]: e["split"]
            for e in json.loads(
                download(client, query="dog | cat", format="json", split="80/10/10")
            )
        }
        assert all(row["split"] == splits[uuid] for uuid, row in by_uuid.items())

    def test_a_smaller_size_puts_the_smaller_rendition_in(self, client, data, files):
        thumb = photo_bytes(width=16, height=12)
        store_master(data.a, thumb, kind="thumb")
        table = pq.read_table(
            io.BytesIO(download(client, query="dog", format="parquet", size="256"))
        )
        assert [row["image"]["bytes"] for row in table.to_pylist()] == [thumb]  # b has no thumb


class TestHuggingFace:
    def test_load_dataset_reads_the_folder_with_one_shard_set_per_split(
        self, client, data, files, tmp_path, settings
    ):
        for _ in range(6):
            picture = make_image()
            store_master(picture, photo_bytes())
            settle(make_pair(data.dog, image=picture), status=ImageLabel.Status.VALIDATED)
        settings.EXPORT_SHARD_BYTES = 1500  # a few pictures per shard
        content = download(client, query="dog", format="hf", split="50/25/25", layout="multi")
        folder, members = extract(content, tmp_path)
        assert members["README.md"].startswith(b"---\nlicense: cc0-1.0\n")
        loaded = datasets.load_dataset(folder, cache_dir=str(tmp_path / "cache"))
        json_export = json.loads(download(client, query="dog", format="json", split="50/25/25"))
        expected: dict[str, set] = {"train": set(), "validation": set(), "test": set()}
        for entry in json_export:
            if entry["uuid"] != str(data.c.uuid):  # c's file is missing
                expected[{"val": "validation"}.get(entry["split"], entry["split"])].add(
                    entry["uuid"]
                )
        assert {name: set(loaded[name]["uuid"]) for name in loaded} == {
            name: uuids for name, uuids in expected.items() if uuids
        }
        shards = [name for name in members if name.startswith("data/")]
        assert len(shards) > len(loaded)  # the small shard size made several per split
        rows = [row for name in loaded for row in loaded[name]]
        assert all(row["labels"] == ["dog"] and row["target"] == [1] for row in rows)
        hashes = manifest_hashes(members["MANIFEST"])
        for name in [*shards, "README.md", "QUALITY.md", "quality.json"]:
            assert hashes[name] == hashlib.sha256(members[name]).hexdigest()

    def test_the_dataset_card_names_the_licence_the_query_the_counts_and_the_quality(
        self, client, data, files, tmp_path
    ):
        content = download(client, query="dog", format="hf")
        _, members = unpacked(content)
        card = members["README.md"].decode()
        assert "license: cc0-1.0" in card and "CC0 1.0" in card
        assert '# query: "dog"' not in card and '- query: "dog"' in card
        assert "- images: 2, train 2\n" in card
        assert "## Label quality" in card and "| dog | 2 | 2 | 0 | no gold |" in card
        assert json.loads(members["quality.json"])["query"] == "dog"
        skipped = members["skipped.csv"].decode().splitlines()
        assert skipped == ["uuid,reason,labels"]

    def test_a_release_downloads_as_it_was_cut(self, client, data, files, tmp_path):
        cut_release("2027-01", LabelQuery.parse("dog"))
        folder, members = extract(download(client, release="2027-01", format="hf"), tmp_path)
        assert folder.endswith("imagemonkey-release-2027-01")
        loaded = datasets.load_dataset(folder, cache_dir=str(tmp_path / "cache"))
        assert set(loaded["train"]["uuid"]) == {str(data.a.uuid), str(data.b.uuid)}
        assert json.loads(members["quality.json"])["release"] == "2027-01"

    def test_an_empty_export_has_its_card_and_report_and_no_shard(self, client, data):
        _, members = unpacked(download(client, query="cat", format="hf"))
        assert not [name for name in members if name.startswith("data/")]
        assert "- images: 0\n" in members["README.md"].decode()
        assert json.loads(members["quality.json"])["labels"] == []


def samples(folder: str) -> list[dict]:
    shards = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.endswith(".tar")
    )
    return list(webdataset.WebDataset(shards, shardshuffle=False, empty_check=False))


class TestWebDataset:
    def test_webdataset_reads_each_image_once_with_its_class(self, client, data, files, tmp_path):
        settle(data.b_cat, status=ImageLabel.Status.VALIDATED)  # b: dog and cat, so skipped
        extra, extra_png = make_image(format=Image.Format.PNG), photo_bytes(fmt="PNG")
        store_master(extra, extra_png)
        settle(make_pair("cat", image=extra), status=ImageLabel.Status.VALIDATED)
        folder, members = extract(
            download(client, query="dog | cat", format="webdataset"), tmp_path
        )
        classes = members["classes.txt"].decode().splitlines()
        assert classes == ["dog", "cat"]
        found = {sample["__key__"]: sample for sample in samples(folder)}
        assert set(found) == {str(data.a.uuid), str(extra.uuid)}
        a, cat = found[str(data.a.uuid)], found[str(extra.uuid)]
        assert a["jpg"] == files["a"] and classes[int(a["cls"])] == "dog"
        assert cat["png"] == extra_png and classes[int(cat["cls"])] == "cat"
        assert json.loads(a["json"])["labels"] == ["dog"]
        skipped = members["skipped.csv"].decode()
        assert f"{data.b.uuid},several positive labels,dog cat" in skipped

    def test_shards_stay_under_the_shard_size_and_follow_the_split(
        self, client, data, files, tmp_path, settings
    ):
        for _ in range(6):
            picture = make_image()
            store_master(picture, photo_bytes())
            settle(make_pair(data.dog, image=picture), status=ImageLabel.Status.VALIDATED)
        settings.EXPORT_SHARD_BYTES = 20_000
        content = download(
            client, query="dog", format="webdataset", layout="multi", split="50/25/25"
        )
        folder, members = extract(content, tmp_path)
        shards = [name for name in members if name.endswith(".tar")]
        assert all(len(members[name]) <= 20_000 for name in shards)
        per_split = collections.Counter(name.split("/")[0] for name in shards)
        assert set(per_split) <= {"train", "val", "test"}
        # Eight samples in three splits: one split has at least three, more than a shard holds
        # (the uuids are random, so which split that is varies).
        assert max(per_split.values()) >= 2, per_split
        splits = {
            e["uuid"]: e["split"]
            for e in json.loads(download(client, query="dog", format="json", split="50/25/25"))
        }
        found = samples(folder)
        assert len(found) == 8  # a, b and six more
        for sample in found:
            meta = json.loads(sample["json"])
            assert meta["split"] == splits[sample["__key__"]]
            assert sample["__url__"].split(os.sep)[-2] == meta["split"]
            assert meta["target"] == [1]
        hashes = manifest_hashes(members["MANIFEST"])
        assert all(hashes[name] == hashlib.sha256(members[name]).hexdigest() for name in shards)
