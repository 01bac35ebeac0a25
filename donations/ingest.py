"""Ingestion: one path from uploaded bytes to a stored, pending image.

The web form and the API both call `ingest()`. It refuses duplicates, decodes
the bytes in an isolated worker (donations.decoding), stores the normalised
master and its derivatives in private storage and creates the rows, all or
nothing: the row commits only after its files are stored, and a rollback
removes whatever files it wrote.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError
from django.db.models import Q

from labels.models import Label
from people.models import Voter

from . import decoding, pairs
from .decoding import Rejected
from .models import Image
from .storage import (
    RENDITIONS,
    STORE_ERRORS,
    file_name,
    files_with_transaction,
    private_storage,
)

log = logging.getLogger(__name__)

STORE_FAILED = "Your picture could not be stored just now. Please send it again in a few minutes."


@dataclass
class Outcome:
    """What happened to one uploaded file, in words for the donor."""

    filename: str
    status: str  # "accepted", "duplicate" or "rejected"
    message: str
    image: Image | None = None
    existing: Image | None = None
    similar: Image | None = None
    http_status: int = 201
    labels: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def sanitize_filename(name: str) -> str:
    """Keep only a short, printable base name, for display (never a path)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        ch for ch in base if ch.isprintable() and ch not in "\u202e\u202d\u200f\u200e"
    )
    return cleaned[:200] or "unnamed"


def duplicate_outcome(filename: str, existing: Image) -> Outcome:
    if existing.status == Image.Status.REJECTED:
        message = (
            "This picture was reviewed before and not accepted, so it cannot be donated again."
        )
    elif existing.status == Image.Status.PUBLIC:
        message = "This picture is already in ImageMonkey."
    else:
        message = "This picture was already donated and is waiting for review."
    return Outcome(filename, "duplicate", message, existing=existing, http_status=409)


def find_similar(phash: int) -> Image | None:
    """The closest existing image within NEAR_DUPLICATE_DISTANCE, found through the band indexes."""
    bands = decoding.phash_bands(phash)
    candidates = (
        Image.objects.exclude(status=Image.Status.REJECTED)
        .filter(
            Q(phash_band0=bands[0])
            | Q(phash_band1=bands[1])
            | Q(phash_band2=bands[2])
            | Q(phash_band3=bands[3])
        )
        .only("pk", "uuid", "phash", "status")[:200]
    )
    best, best_distance = None, settings.NEAR_DUPLICATE_DISTANCE + 1
    for candidate in candidates:
        distance = decoding.phash_distance(candidate.phash, phash)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def ingest(
    data: bytes,
    *,
    filename: str = "",
    donor: Voter | None = None,
    network: str = "",
    labels: list[Label] = (),
    suggestions: list[str] = (),
    add_sublabels: bool = False,
) -> Outcome:
    filename = sanitize_filename(filename)
    bytes_sha256 = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(bytes_sha256=bytes_sha256).first()
    if existing is not None:
        return duplicate_outcome(filename, existing)
    try:
        decoded = decoding.decode(data)
    except Rejected as rejection:
        log.info("upload rejected: %s (%s) %s", rejection.code, filename, bytes_sha256)
        return Outcome(filename, "rejected", rejection.message, http_status=rejection.status)
    existing = Image.objects.filter(pixels_sha256=decoded.pixels_sha256).first()
    if existing is not None:
        return duplicate_outcome(filename, existing)

    similar = find_similar(decoded.phash)
    bands = decoding.phash_bands(decoded.phash)
    image = Image(
        width=decoded.master.width,
        height=decoded.master.height,
        format=decoded.format,
        bytes_sha256=bytes_sha256,
        pixels_sha256=decoded.pixels_sha256,
        master_sha256=hashlib.sha256(decoded.master.data).hexdigest(),
        phash=decoded.phash,
        phash_band0=bands[0],
        phash_band1=bands[1],
        phash_band2=bands[2],
        phash_band3=bands[3],
        original_filename=filename,
        donor=donor,
        donor_network=network,
        similar_to=similar,
    )
    chosen = list({label.pk: label for label in labels}.values())
    if donor is not None and not donor.exists:
        donor.save()  # a visitor's first donation makes them a voter
        image.donor = donor
    try:
        # The files are written before the commit and deleted if the transaction
        # rolls back, whatever the reason (a full disk, a lost bucket, the commit itself).
        with files_with_transaction() as files:
            # The unique hash columns make the second of two identical uploads
            # wait here for the first, then fail: exactly one image is stored.
            image.save()
            storage = private_storage()
            for kind in RENDITIONS:
                name = file_name(image.uuid, kind, image.extension)
                files.save(storage, name, ContentFile(getattr(decoded, kind).data))
            # Parts, when asked for, are asked about once each label is validated.
            pairs.attach_many(image, chosen, added_by=donor, ask_parts=add_sublabels)
            for text in suggestions:
                pairs.suggest(text, image)
    except IntegrityError:
        existing = Image.objects.filter(
            Q(bytes_sha256=bytes_sha256) | Q(pixels_sha256=decoded.pixels_sha256)
        ).first()
        if existing is None:
            raise
        return duplicate_outcome(filename, existing)
    except STORE_ERRORS:
        # Nothing is stored (the transaction rolled back); the donor may simply send it again.
        log.exception("upload not stored: the media store failed (%s) %s", filename, bytes_sha256)
        return Outcome(filename, "rejected", STORE_FAILED, http_status=503)
    log.info("upload accepted: %s %s %dx%d", image.uuid, decoded.format, image.width, image.height)
    message = "Thank you! Your picture is waiting for a moderator."
    if similar is not None:
        message += " It looks like a picture we already have; a moderator will compare them."
    return Outcome(
        filename,
        "accepted",
        message,
        image=image,
        similar=similar,
        labels=[label.full_name for label in chosen],
        suggestions=list(suggestions),
    )
