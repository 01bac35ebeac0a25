"""Where image files live, written atomically.

Two stores: private (pending, quarantined, hidden: no URL reaches them) and
public (approved: served at MEDIA_URL). Both are Django storages, so an
S3-compatible backend can replace them without touching the ingestion code.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

RENDITIONS = ("master", "display", "thumb")


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
PUBLIC_FILE_CACHE_CONTROL = "public, max-age=3600, s-maxage=60, proxy-revalidate"


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


class PrivateImageStorage(AtomicFileSystemStorage):
    subfolder = "private"

    def url(self, name):
        raise ValueError("private images have no public URL")


class PublicImageStorage(AtomicFileSystemStorage):
    subfolder = "public"

    @property
    def base_url(self):
        return settings.MEDIA_URL


def private_storage():
    return storages["private_media"]


def public_storage():
    return storages["public_media"]
