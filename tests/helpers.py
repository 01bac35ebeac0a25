"""Tiny factories for tests: real rows, real images made with Pillow in memory."""

import hashlib
import io
import itertools
import random

from PIL import Image as PILImage

from donations.models import Image, ImageLabel
from donations.pairs import attach, refresh_servable
from labels.models import Label
from people.models import Voter
from validation import tickets, voting
from validation.models import Vote

_counter = itertools.count(1)


def make_label(name: str, *, parent: Label | None = None, **fields) -> Label:
    return Label.objects.create(name=name, parent=parent, **fields)


def make_voter(**fields) -> Voter:
    return Voter.objects.create(**fields)


def make_image(*, status: str = Image.Status.PUBLIC, donor: Voter | None = None, **fields) -> Image:
    """An image row with unique hashes (no files; ingestion tests make real files)."""
    n = next(_counter)
    digest = hashlib.sha256(f"image-{n}-{random.random()}".encode()).hexdigest()
    phash = random.getrandbits(63)
    defaults = {
        "width": 640,
        "height": 480,
        "format": Image.Format.JPEG,
        "bytes_sha256": digest,
        "pixels_sha256": hashlib.sha256(digest.encode()).hexdigest(),
        "master_sha256": digest,
        "phash": phash,
        "phash_band0": phash & 0xFFFF,
        "phash_band1": (phash >> 16) & 0xFFFF,
        "phash_band2": (phash >> 32) & 0xFFFF,
        "phash_band3": (phash >> 48) & 0xFFFF,
    }
    defaults.update(fields)
    return Image.objects.create(status=status, donor=donor, **defaults)


def make_pair(label: str | Label = "dog", image: Image | None = None, **fields) -> ImageLabel:
    if isinstance(label, str):
        label = Label.objects.top_level().named(label).first() or make_label(label)
    return ImageLabel.objects.create(image=image or make_image(), label=label, **fields)


def serve(pair: ImageLabel) -> ImageLabel:
    """Set the pair's servable flag as donations.pairs would (rows made raw in tests)."""
    refresh_servable(pair)
    return pair


def network_of(voter: Voter) -> str:
    """A /24 of this voter's own, as if every test voter came from a network of their own."""
    return f"10.{voter.pk // 250 % 250}.{voter.pk % 250}.0/24"


def vote(pair: ImageLabel, voter: Voter, answer: int, ip_prefix: str | None = None):
    """Answer a pair as if it had been served to this voter (with its task's ticket), from
    the voter's own network unless `ip_prefix` says otherwise."""
    if not voter.exists:
        voter.save()
    ticket = tickets.issue(voter, pair)
    prefix = network_of(voter) if ip_prefix is None else ip_prefix
    return voting.record_vote(pair, voter, answer, prefix, ticket=ticket)


def cast(pair: ImageLabel, voter: Voter, answer: bool, counted: bool = True) -> Vote:
    """A raw vote row (the voting rules themselves are tested through the views)."""
    vote = Vote.objects.create(
        pair=pair,
        voter=voter,
        answer=Vote.Answer.YES if answer else Vote.Answer.NO,
        counted=counted,
        weight=voting.weight_of(voter, pair.label_id) if counted else 0.0,
    )
    voting.recount(pair)
    return vote


def photo_bytes(width: int = 64, height: int = 48, fmt: str = "JPEG", color=None, **save) -> bytes:
    """A small, real picture: a gradient so that hashes differ by colour."""
    color = color or (random.randrange(256), random.randrange(256), random.randrange(256))
    image = PILImage.new("RGB", (width, height), color)
    for x in range(0, width, 4):
        for y in range(0, height, 4):
            image.putpixel((x, y), ((x * 7) % 256, (y * 5) % 256, (x + y) % 256))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def real_public_image(*labels: str, size=(320, 240)) -> Image:
    """An image that went through ingestion and approval, with real files."""
    from django.db import transaction

    from donations.ingest import ingest

    outcome = ingest(photo_bytes(*size), filename="photo.jpg")
    assert outcome.accepted, outcome.message
    image = outcome.image
    with transaction.atomic():
        image.decide("approve")
    for name in labels:
        label = Label.objects.top_level().named(name).first() or make_label(name)
        attach(image, label)
    return image
