"""/v1/labelme and /v1/donation/<uuid>/labelme: the /label page's work through the API.

A picture to label is chosen as the /label page chooses it (selection), and labels are
added through the one function that page uses (donations.pairs.add_label): a known
label becomes a pair with no votes, an unknown one a suggestion for curators.
"""

from __future__ import annotations

import uuid as uuid_module
from collections import defaultdict

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from donations import pairs as pair_rules
from donations.models import Image, ImageLabel
from labels.models import normalize_name
from people.http import (
    BadBody,
    allow,
    api_write,
    is_storable_text,
    json_error,
    public_read,
    read_json,
)
from people.identity import api_identity
from people.ratelimits import limit, spend

from . import selection

IMAGE_PATH = "/v1/donation/"
MAX_LABELS = 50  # labels and sublabels of one request together
NAME_MAX_LENGTH = 100
ENTRY_SHAPE = (
    'the body is a list of {"label": "dog", "sublabels": ["eye"], "annotatable": true}; '
    "sublabels and annotatable are optional"
)


def _validation_json(pair: ImageLabel) -> dict:
    return {"uuid": str(pair.uuid), "num_yes": pair.num_yes, "num_no": pair.num_no}


def all_labels(image: Image) -> list[dict]:
    """The picture's pairs as the original's label tree: each label with its sublabels."""
    pairs = image.pairs.select_related("label__parent").order_by("label__name")
    tree: dict[str, dict] = {}
    parts: dict[str, list] = defaultdict(list)
    for pair in pairs:
        label = pair.label
        if label.parent_id is None:
            tree[label.name] = {
                "label": label.name,
                "unlocked": True,
                "annotatable": True,
                "validation": _validation_json(pair),
                "sublabels": [],
            }
        else:
            parts[label.parent.name].append(
                {
                    "name": label.name,
                    "unlocked": True,
                    "annotatable": True,
                    "validation": _validation_json(pair),
                }
            )
    for parent, sublabels in parts.items():
        entry = tree.setdefault(
            parent, {"label": parent, "unlocked": True, "annotatable": True, "sublabels": []}
        )
        entry["sublabels"] = sublabels
    return [tree[name] for name in sorted(tree)]


@public_read
@api_identity
def labelme(request: HttpRequest) -> JsonResponse:
    """GET /v1/labelme[?image_id=]: a public picture that needs labels, with its labels."""
    image = None
    if "image_id" in request.GET:
        try:
            wanted = uuid_module.UUID(request.GET["image_id"])
        except ValueError:
            return json_error("image_id is a picture's uuid", 400)
        image = Image.objects.public().filter(uuid=wanted).first()
        if image is None:
            return json_error("no public picture with that id", 404)
    image = image or selection.image_needing_labels(request.voter)
    if image is None:
        return json_error("there are no public pictures yet", 404)
    return JsonResponse(
        {
            "image": {
                "uuid": str(image.uuid),
                "provider": "donation",
                "url": request.build_absolute_uri(f"{IMAGE_PATH}{image.uuid}"),
                "unlocked": True,
                "width": image.width,
                "height": image.height,
                "descriptions": [],
            },
            "all_labels": all_labels(image),
        }
    )


def _name(value: object) -> str:
    """A label name of the body, normalised; ValueError when it is not one."""
    if isinstance(value, dict):  # the late original's {"name": "eye"}
        value = value.get("name")
    if not isinstance(value, str) or not is_storable_text(value):
        raise ValueError(ENTRY_SHAPE)
    name = normalize_name(value)
    if not name or "/" in name:
        raise ValueError(f"not a label name: {value[:NAME_MAX_LENGTH]!r}")
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"a label name has at most {NAME_MAX_LENGTH} characters")
    return name


def typed_labels(body: list) -> list[str]:
    """What the body asks to add, as the /label page's field would say it: dog, dog/eye."""
    if not body:
        raise ValueError(ENTRY_SHAPE)
    wanted: list[str] = []
    for entry in body:
        if not isinstance(entry, dict) or "label" not in entry:
            raise ValueError(ENTRY_SHAPE)
        if not isinstance(entry.get("annotatable", True), bool):
            raise ValueError("annotatable is true or false")
        sublabels = entry.get("sublabels") or []
        if not isinstance(sublabels, list):
            raise ValueError(ENTRY_SHAPE)
        label = _name(entry["label"])
        wanted.append(label)
        wanted += [f"{label}/{_name(part)}" for part in sublabels]
    if len(wanted) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels and sublabels at once")
    return list(dict.fromkeys(wanted))


def _labelable(request: HttpRequest, uuid) -> Image | None:
    """A public picture, or the caller's own donation while it waits for review."""
    image = Image.objects.filter(uuid=uuid).first()
    if image is None or image.status == Image.Status.PUBLIC:
        return image
    voter = request.voter
    own = voter.exists and image.donor_id == voter.pk
    return image if own and image.status == Image.Status.PENDING else None


@api_write
@allow("POST")
@api_identity(scope="annotate")
@limit("label", "VOTE_RATE")
def add_labels(request: HttpRequest, uuid) -> JsonResponse:
    """POST /v1/donation/<uuid>/labelme with [{label, sublabels}]: every label, or none."""
    image = _labelable(request, uuid)
    if image is None:
        return json_error("no public picture (or pending donation of yours) with that id", 404)
    try:
        wanted = typed_labels(read_json(request, array=True))
    except BadBody as error:
        return json_error(str(error), error.status)
    except ValueError as error:
        return json_error(str(error), 400)
    if refused := spend(request, "label", "VOTE_RATE", len(wanted) - 1):  # each label counts
        return refused
    added, already, suggested = [], [], []
    with transaction.atomic():
        for text in wanted:
            label, created = pair_rules.add_label(image, text, added_by=request.voter)
            if label is None:
                suggested.append(text)
            else:
                (added if created else already).append(label.full_name)
    return JsonResponse({"added": added, "already": already, "suggested": suggested})
