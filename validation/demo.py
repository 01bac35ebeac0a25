"""A site that is alive from the first minute: a few real public-domain photos, labelled,
approved, some of their answers known (gold), for `manage.py demo` (`make demo`).

The photos are sample images that scikit-image ships in its wheel (skimage/data/). Only
those its documentation (the docstrings of skimage.data) calls public domain or CC0 are
used; the others (camera, coins, moon, page, text, brick, grass, gravel, …) say nothing or
"no known copyright restrictions", which is not a dedication. The files are read as bytes
and go through the same ingestion as any donation; nothing of scikit-image is imported.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from donations.ingest import ingest
from donations.models import Image, ImageLabel
from donations.pairs import attach
from labels.models import Label
from people.models import Voter

from .models import Vote
from .voting import record_vote


@dataclass(frozen=True)
class Sample:
    file: str  # in skimage/data/
    title: str
    credit: str
    licence: str  # as scikit-image's documentation states it
    source: str  # where scikit-image took it from ("" when it does not say)
    ask: tuple[str, ...] = ()  # labels left to the crowd
    known: dict[str, bool] = field(default_factory=dict)  # the demo moderator's answers


SAMPLES = (
    Sample(
        "chelsea.png",
        "Chelsea the cat",
        "Stefan van der Walt",
        "CC0, by the photographer",
        "",
        known={"cat": True, "dog": False},
    ),
    Sample(
        "coffee.png",
        "A cup of coffee, courtesy of Pikolo Espresso Bar",
        "Rachel Michetti",
        "CC0, by the photographer",
        "",
        ask=("coffee", "spoon", "table"),
        known={"cup": True},
    ),
    Sample(
        "astronaut.png",
        "The astronaut Eileen Collins",
        "NASA",
        "released into the public domain",
        "https://flic.kr/p/r9qvLn",
        ask=("woman", "flag"),
        known={"person": True},
    ),
    Sample(
        "rocket.jpg",
        "The launch of DSCOVR on a Falcon 9",
        "SpaceX",
        "released into the public domain",
        "https://www.flickr.com/photos/spacexphotos/16511594820/",
        ask=("sky",),
        known={"cat": False},
    ),
    Sample(
        "clock_motion.png",
        "A wall clock, photographed while moving",
        "Stefan van der Walt",
        "released into the public domain by the photographer",
        "",
        ask=("clock",),
    ),
)


class DemoUnavailable(Exception):
    """The demo cannot be loaded (scikit-image is missing, a label is not in the vocabulary)."""


def sample_folder() -> Path:
    """skimage/data/ of the installed scikit-image, found without importing it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.origin:
        raise DemoUnavailable(
            "scikit-image is not installed: `make demo` installs it (requirements-demo.lock)."
        )
    return Path(spec.origin).parent / "data"


def _label(name: str) -> Label:
    label = Label.objects.resolve(name)
    if label is None:
        raise DemoUnavailable(f"The label “{name}” is not in the vocabulary: run populate_labels.")
    return label


def load(moderator: Voter) -> dict[str, int]:
    """Load the samples, once: a second run finds everything in place and writes nothing.

    Each photo is ingested (a duplicate is the one already here), approved by the
    moderator while pending, and gets its pairs; the moderator answers the `known`
    labels, which on a site with little gold makes those pairs gold (the cold start of
    validation.voting). Pictures a moderator rejected or hid are left as they are.
    """
    folder = sample_folder()
    counts = {"images": 0, "approved": 0, "pairs": 0, "answers": 0}
    for sample in SAMPLES:
        outcome = ingest((folder / sample.file).read_bytes(), filename=sample.file)
        image = outcome.image or outcome.existing
        if image is None:
            raise DemoUnavailable(f"{sample.file} was refused: {outcome.message}")
        counts["images"] += outcome.image is not None
        if image.status == Image.Status.PENDING:
            with transaction.atomic():
                image.decide("approve", moderator=moderator.user)
            counts["approved"] += 1
        if image.status != Image.Status.PUBLIC:
            continue
        for name in (*sample.ask, *sample.known):
            counts["pairs"] += attach(image, _label(name))[1]
        for name, answer in sample.known.items():
            pair = ImageLabel.objects.get(image=image, label=_label(name))
            if not Vote.objects.filter(pair=pair, voter=moderator).exists():
                record_vote(pair, moderator, Vote.Answer.YES if answer else Vote.Answer.NO)
                counts["answers"] += 1
    return counts
