"""Where image files live: the one home of the storage rules.

Two stores: private (pending, quarantined, hidden: no public URL reaches them) and
public (approved). Each is a Django storage, on the filesystem (MEDIA_ROOT/private,
MEDIA_ROOT/public, served at MEDIA_URL) or, with MEDIA_BACKEND=s3, under the
prefixes private/ and public/ of one S3-compatible bucket (public/ served from the
bucket or MEDIA_PUBLIC_URL). Both kinds answer the same few questions beyond
Django's storage API — how a private file is handed to nginx, every object with its
time, an object's sha256, a copy from one store to the other — so no other module
knows which backend it talks to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import transaction
from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

RENDITIONS = ("master", "display", "thumb")
PRIVATE_PREFIX = "private"
PUBLIC_PREFIX = "public"


def file_name(image_uuid, kind: str, extension: str, publication: str = "") -> str:
    """Storage name of one rendition: ab/<uuid>.jpg, ab/<uuid>-display.jpg, …

    A public copy's name carries the picture's publication key, ab/<uuid>-<key>.jpg,
    new each time the picture is published: once hidden, a picture that comes back
    comes back at new URLs, and nothing cached under the old ones shows it again.
    Private copies (and pictures published before keys existed) have none.
    """
    suffix = "" if kind == "master" else f"-{kind}"
    key = f"-{publication}" if publication else ""
    return f"{image_uuid.hex[:2]}/{image_uuid}{key}{suffix}.{extension}"


def new_publication_key() -> str:
    return secrets.token_hex(8)


# How long a public file may be kept: an hour by a browser, a minute by a shared
# cache before it asks again. A hidden picture's files are gone from the origin, so
# a hide reaches every shared cache within a minute and every browser within an hour.
# In a bucket it is set on each public object when it is written.
PUBLIC_FILE_CACHE_CONTROL = "public, max-age=3600, s-maxage=60, proxy-revalidate"
PRIVATE_FILE_CACHE_CONTROL = "private, no-store"

# What a store raises when it cannot do its job just now (a full disk, a bucket that does
# not answer or refuses): callers answer 503 "try again" instead of failing. A missing file
# (FileNotFoundError, an OSError too) is caught before this by those who expect one.
STORE_ERRORS = (OSError, BotoCoreError, ClientError, Boto3Error)


def is_temporary(name: str) -> bool:
    """A file AtomicFileSystemStorage had not linked into place yet (a crash left it)."""
    return name.rsplit("/", 1)[-1].startswith(".tmp-")


def sha256_of(handle) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(1024 * 1024), b""):
        digest.update(chunk)
    return digest.hexdigest()


# --- Filesystem ------------------------------------------------------------------


class AtomicFileSystemStorage(FileSystemStorage):
    """Write to a temporary file, fsync, then link it into place and fsync the folder.

    A crash at any point leaves either no file at the final name or the whole
    file: never a partial one. An existing file is never overwritten.
    """

    subfolder = ""

    @property
    def location(self):  # read at use, so tests can move MEDIA_ROOT
        return os.path.abspath(str(Path(settings.MEDIA_ROOT) / self.subfolder))

    def _save(self, name: str, content) -> str:
        final = Path(self.path(name))
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.parent / f".tmp-{secrets.token_hex(8)}"
        try:
            with open(temporary, "xb") as handle:
                if hasattr(content, "chunks"):
                    for chunk in content.chunks():
                        handle.write(chunk)
                else:
                    handle.write(content.read())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)
            os.link(temporary, final)  # fails rather than overwrite
        finally:
            temporary.unlink(missing_ok=True)
        directory = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return name

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        # Names are derived from the image's uuid and never reused.
        return name

    def accel_redirect(self, name: str) -> str | None:
        """The internal nginx location that sends this file, when nginx sits in front."""
        return None

    def entries(self) -> Iterator[tuple[str, datetime]]:
        """Every stored file (name, modification time), a crashed write's temporary one too."""
        root = Path(self.location)
        for folder, _, files in os.walk(root):
            for base in files:
                path = Path(folder) / base
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    yield path.relative_to(root).as_posix(), modified

    def sha256(self, name: str) -> str | None:
        try:
            with self.open(name, "rb") as handle:
                return sha256_of(handle)
        except FileNotFoundError:
            return None


class PrivateImageStorage(AtomicFileSystemStorage):
    subfolder = PRIVATE_PREFIX

    def url(self, name):
        raise ValueError("private images have no public URL")

    def accel_redirect(self, name: str) -> str | None:
        return f"/_private/{name}" if settings.PRIVATE_MEDIA_X_ACCEL else None


class PublicImageStorage(AtomicFileSystemStorage):
    subfolder = PUBLIC_PREFIX

    @property
    def base_url(self):
        return settings.MEDIA_URL

    def url(self, name):
        self.path(name)  # refuses ../private/… (SuspiciousFileOperation), as the bucket does
        return super().url(name)

    def accel_redirect(self, name: str) -> str | None:
        return f"{settings.MEDIA_URL}{name}" if settings.PRIVATE_MEDIA_X_ACCEL else None


# --- S3-compatible bucket ----------------------------------------------------------


class S3ImageStorage(S3Storage):
    """One prefix of the bucket (AWS_STORAGE_BUCKET_NAME), through django-storages and boto3.

    Every object carries the sha256 of its bytes in its metadata (x-amz-meta-sha256),
    so migrations and checks compare objects without downloading them.
    """

    prefix = ""
    cache_control = PRIVATE_FILE_CACHE_CONTROL

    def __init__(self, **options):
        options.setdefault(
            "client_config",
            Config(
                s3={"addressing_style": settings.AWS_S3_ADDRESSING_STYLE},
                signature_version=settings.AWS_S3_SIGNATURE_VERSION,
                # A bucket that does not answer fails the request, not the worker.
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                # Checksums only where S3 requires them: MinIO, Ceph and Garage refuse
                # or mishandle the trailing checksums newer boto3 sends by default.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        options.setdefault("location", self.prefix)
        options.setdefault("file_overwrite", True)  # names are never reused: no HEAD first
        options.setdefault("default_acl", None)  # access is the bucket policy's, never ACLs
        options.setdefault("object_parameters", {"CacheControl": self.cache_control})
        super().__init__(**options)

    def _get_write_parameters(self, name, content=None):
        params = super()._get_write_parameters(name, content)
        if content is not None and hasattr(content, "seek"):
            content.seek(0)
            params["Metadata"] = {"sha256": sha256_of(content)}
            content.seek(0)
        return params

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name

    def accel_redirect(self, name: str) -> str | None:
        return None  # the app sends the bytes itself: nginx holds no bucket credentials

    def key(self, name: str) -> str:
        """The object's key in the bucket (its name under this store's prefix)."""
        return self._normalize_name(name)

    def _client(self):
        return self.connection.meta.client

    def entries(self) -> Iterator[tuple[str, datetime]]:
        """Every object under the prefix, from the listing (no request per object)."""
        prefix = f"{self.location}/" if self.location else ""
        pages = self._client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket_name, Prefix=prefix):
            for entry in page.get("Contents", ()):
                yield entry["Key"][len(prefix) :], entry["LastModified"]

    def sha256(self, name: str) -> str | None:
        """The object's sha256: from its metadata, or from its bytes when it has none."""
        try:
            head = self._client().head_object(Bucket=self.bucket_name, Key=self.key(name))
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise
        recorded = head.get("Metadata", {}).get("sha256")
        if recorded:
            return recorded
        with self.open(name, "rb") as handle:
            return sha256_of(handle)

    def copy_within_bucket(self, name: str, target: S3ImageStorage, new_name: str) -> bool:
        """Copy an object to another prefix on the server (CopyObject): no byte passes
        through the app. The copy takes the target's Cache-Control. False if it is gone."""
        digest = self.sha256(name)
        if digest is None:
            return False
        params = target._get_write_parameters(target.key(new_name))
        params["Metadata"] = {"sha256": digest}
        self._client().copy_object(
            Bucket=target.bucket_name,
            Key=target.key(new_name),
            CopySource={"Bucket": self.bucket_name, "Key": self.key(name)},
            MetadataDirective="REPLACE",
            **params,
        )
        return True

    def get_modified_time(self, name):
        try:
            return super().get_modified_time(name)
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(name) from None
            raise


class PrivateS3Storage(S3ImageStorage):
    prefix = PRIVATE_PREFIX
    cache_control = PRIVATE_FILE_CACHE_CONTROL

    def url(self, name, parameters=None, expire=None, http_method=None):
        raise ValueError("private images have no public URL")


class PublicS3Storage(S3ImageStorage):
    """public/ of the bucket, readable by anyone through the bucket policy
    (public_read_policy) or a CDN in front of it (MEDIA_PUBLIC_URL)."""

    prefix = PUBLIC_PREFIX
    cache_control = PUBLIC_FILE_CACHE_CONTROL

    def __init__(self, **options):
        options.setdefault("querystring_auth", False)
        super().__init__(**options)
        self._base_url = None

    @property
    def base_url(self) -> str:
        """Where public/ is reached: MEDIA_PUBLIC_URL, or the bucket's own unsigned URL."""
        if self._base_url is None:
            configured = settings.MEDIA_PUBLIC_URL
            if configured:
                self._base_url = configured.rstrip("/") + "/"
            else:  # boto3's own endpoint and addressing rules, asked once
                self._base_url = super().url("x").split("?")[0][: -len("x")]
        return self._base_url

    def url(self, name, parameters=None, expire=None, http_method=None):
        key = self.key(clean_name(name))  # refuses ../private/… (SuspiciousOperation)
        return self.base_url + filepath_to_uri(key[len(self.location) + 1 :])


def public_read_policy(bucket: str) -> dict:
    """The bucket policy MEDIA_BACKEND=s3 needs: anyone may read public/, nothing else.
    Private objects have no grant at all, so only the app's credentials reach them."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRenditions",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/{PUBLIC_PREFIX}/*",
            }
        ],
    }


# --- The two stores, and moving files between them ---------------------------------


def private_storage():
    return storages["private_media"]


def public_storage():
    return storages["public_media"]


def public_media_origin() -> str | None:
    """The origin public pictures are fetched from when it is not the site's own (the
    bucket's, or MEDIA_PUBLIC_URL's): pages must let browsers load images from it."""
    parts = urlsplit(public_storage().base_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def filesystem_stores() -> tuple[PrivateImageStorage, PublicImageStorage]:
    """MEDIA_ROOT's two stores, whatever MEDIA_BACKEND says (for the migration)."""
    return PrivateImageStorage(), PublicImageStorage()


def bucket_stores() -> tuple[PrivateS3Storage, PublicS3Storage]:
    """The bucket's two stores from the AWS_* settings, whatever MEDIA_BACKEND says."""
    return PrivateS3Storage(), PublicS3Storage()


def copy_file(source, name: str, target, new_name: str) -> bool:
    """Copy one file between stores (server-side within a bucket); False if it is gone."""
    if (
        isinstance(source, S3ImageStorage)
        and isinstance(target, S3ImageStorage)
        and source.endpoint_url == target.endpoint_url
    ):
        return source.copy_within_bucket(name, target, new_name)
    try:
        with source.open(name, "rb") as handle:
            target.save(new_name, handle)
    except FileNotFoundError:
        return False
    return True


class StoredFiles:
    """The files a transaction writes, kept only if it commits (see files_with_transaction)."""

    def __init__(self) -> None:
        self.written: list[tuple[Storage, str]] = []

    def save(self, storage, name: str, content) -> None:
        storage.save(name, content)
        self.written.append((storage, name))

    def copy(self, source, name: str, target, new_name: str) -> bool:
        copied = copy_file(source, name, target, new_name)
        if copied:
            self.written.append((target, new_name))
        return copied

    def remove(self) -> None:
        for storage, name in reversed(self.written):
            storage.delete(name)
        self.written.clear()


@contextlib.contextmanager
def files_with_transaction() -> Iterator[StoredFiles]:
    """A transaction whose new files outlive it only if it commits.

    Files are written before the commit, so a committed row always has its files;
    whatever makes the transaction roll back — an exception inside, the commit itself
    failing — deletes every file written through the StoredFiles it yields. Files to
    remove because of the change go with transaction.on_commit. Nested in a caller's
    transaction, a failure of this block still cleans up; a rollback of the caller's
    after this block ended leaves files that `manage.py orphans` reports.
    """
    files = StoredFiles()
    committed = False

    def mark() -> None:
        nonlocal committed
        committed = True

    try:
        with transaction.atomic():
            # Registered first, so it runs first after the commit: a later callback
            # that fails cannot make committed files look like rolled-back ones.
            transaction.on_commit(mark)
            yield files
    except BaseException:
        if not committed:
            files.remove()
        raise
