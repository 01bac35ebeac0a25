"""The two image stores as tests look at them, whichever backend the suite runs on.

`make test` keeps pictures in MEDIA_ROOT; `TEST_MEDIA_BACKEND=s3` puts both stores in a
moto bucket (tests/conftest.py). Tests that check where a picture is, what is stored, or
that a public URL serves it go through these helpers, and so hold for both. The few that
check what only the filesystem store does (nginx's X-Accel-Redirect, a full disk, a
crashed write's temporary file) are marked `filesystem_only`; tests/test_media_s3.py
checks what the bucket does instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import requests
from django.core.files.storage import Storage

from donations.storage import private_storage, public_storage

if TYPE_CHECKING:
    from donations.models import Image

TEST_MEDIA_BACKEND = os.environ.get("TEST_MEDIA_BACKEND", "filesystem")

filesystem_only = pytest.mark.skipif(
    TEST_MEDIA_BACKEND != "filesystem",
    reason="what only MEDIA_ROOT does; tests/test_media_s3.py checks the bucket's way",
)


@dataclass(frozen=True)
class StoredFile:
    """One file of one store, by its name there."""

    storage: Storage
    name: str

    def exists(self) -> bool:
        return self.storage.exists(self.name)

    def read_bytes(self) -> bytes:
        with self.storage.open(self.name, "rb") as handle:
            return handle.read()

    def unlink(self) -> None:
        self.storage.delete(self.name)


def private_file(image: Image, kind: str = "master") -> StoredFile:
    return StoredFile(private_storage(), image.file_name(kind, public=False))


def public_file(image: Image, kind: str = "master") -> StoredFile:
    return StoredFile(public_storage(), image.file_name(kind, public=True))


def stored_media() -> list[str]:
    """Every file of both stores as private/<name> or public/<name>, sorted; a crashed
    write's temporary file too."""
    return sorted(
        f"{prefix}/{name}"
        for prefix, store in (("private", private_storage()), ("public", public_storage()))
        for name, _ in store.entries()
    )


def stored_files() -> list[StoredFile]:
    """The same files, to read."""
    stores = {"private": private_storage(), "public": public_storage()}
    return [
        StoredFile(stores[prefix], name)
        for prefix, name in (key.split("/", 1) for key in stored_media())
    ]


@dataclass
class Fetched:
    status: int
    headers: dict
    body: bytes


def fetch_public(client, url: str) -> Fetched:
    """GET a public picture's URL as a browser would: the site's own /media/ through the
    test client, the bucket's (or a CDN's) URL over HTTP."""
    if url.startswith("/"):
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return Fetched(response.status_code, response.headers, body)
    response = requests.get(url, timeout=10)
    return Fetched(response.status_code, response.headers, response.content)
