"""/v1/ annotation endpoints, in the original ImageMonkey's 2021 shapes.

Like every API write, these identify their voter by the X-Voter-Token header only
(people.identity.api_identity); a call without one acts as a fresh anonymous voter.
"""

from __future__ import annotations

import uuid as uuid_module

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from donations.models import Image, ImageLabel
from labels.lookup import label_json, resolve_pair_label
from people.http import BadBody, allow, api_write, json_error, public_read, read_json
from people.identity import api_identity, client_ip, ip_prefix
from people.ratelimits import limit, spend

from . import drawing
from .models import Annotation, AnnotationRevision

MAX_ITEMS = 20  # labels outlined in one POST


def _pair_of(image: Image, body: dict) -> ImageLabel:
    """The pair of this picture and the (sub)label the item names; LookupError otherwise."""
    label = resolve_pair_label(body)
    pair = (
        ImageLabel.objects.select_related("image", "label__parent")
        .filter(image=image, label=label)
        .first()
    )
    if pair is None:
        raise LookupError(f"this picture has no label “{label.full_name}” to outline")
    return pair


def annotation_url(annotation: Annotation) -> str:
    return f"{reverse('api-annotation')}?annotation_id={annotation.uuid}"


def drawn_json(drawn: drawing.Drawn) -> dict:
    annotation = drawn.annotation
    return {
        "annotation_id": str(annotation.uuid),
        "uuid": str(annotation.pair.image.uuid),
        **label_json(annotation.pair.label),
        "revision": drawn.revision.number,
        "annotations": drawn.revision.shapes,
    }


@api_write
@allow("POST")
@api_identity
@limit("annotate", "ANNOTATION_RATE")
def annotate(request: HttpRequest, uuid) -> JsonResponse:
    """POST /v1/donation/<uuid>/annotate with [{annotations: [shapes], label, sublabel}]."""
    image = Image.objects.public().filter(uuid=uuid).first()
    if image is None:
        return json_error("no such public picture", 404)
    try:
        body = read_json(request, allow_list=True)
        items = body if isinstance(body, list) else [body]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ValueError('send [{"annotations": [shapes], "label": "dog", "sublabel": ""}]')
        if len(items) > MAX_ITEMS:
            raise ValueError(f"at most {MAX_ITEMS} labels outlined at once")
        pairs = [_pair_of(image, item) for item in items]
        if len({pair.pk for pair in pairs}) != len(pairs):
            raise ValueError("each label once per request")
        plans = []
        for number, (pair, item) in enumerate(zip(pairs, items, strict=True)):
            try:
                plans.append(drawing.plan(pair, item.get("annotations"), item.get("ticket")))
            except drawing.DrawingRefused as error:
                prefix = f"item {number}: " if len(items) > 1 else ""
                raise drawing.DrawingRefused(prefix + error.message, error.status) from None
    except BadBody as error:
        return json_error(str(error), error.status)
    except drawing.DrawingRefused as refused:
        return json_error(refused.message, refused.status)
    except ValueError as error:
        return json_error(str(error), 400)
    except LookupError as error:
        return json_error(str(error.args[0]), 404)
    if refused := spend(request, "annotate", "ANNOTATION_RATE", len(pairs) - 1):
        return refused
    network = ip_prefix(client_ip(request))
    try:
        drawn = drawing.draw_many(plans, request.voter, network)
    except drawing.DrawingRefused as refused:
        return json_error(refused.message, refused.status)
    response = JsonResponse({"annotations": [drawn_json(d) for d in drawn]}, status=201)
    response["Location"] = annotation_url(drawn[0].annotation)
    return response


def _annotation(text: str) -> Annotation | None:
    """The outline of a public picture that the id names, with pair, image and label."""
    try:
        key = uuid_module.UUID(str(text))
    except ValueError:
        return None
    return (
        Annotation.objects.public()
        .select_related("pair__image", "pair__label__parent")
        .filter(uuid=key)
        .first()
    )


def annotation_json(annotation: Annotation, revision: AnnotationRevision) -> dict:
    """An outline in the original API's shape. Its votes are the latest revision's; nothing
    says whether it is gold."""
    pair = annotation.pair
    return {
        "annotation_id": str(annotation.uuid),
        "image": {
            "uuid": str(pair.image.uuid),
            "width": pair.image.width,
            "height": pair.image.height,
            "url": pair.image.display_url,
        },
        "uuid": str(pair.image.uuid),
        **label_json(pair.label),
        "annotations": revision.shapes,
        "revision": revision.number,
        "latest_revision": annotation.revision,
        "num_yes": annotation.num_yes if revision.number == annotation.revision else 0,
        "num_no": annotation.num_no if revision.number == annotation.revision else 0,
        "created": revision.created.isoformat(),
    }


@public_read
def annotation(request: HttpRequest) -> JsonResponse:
    """GET /v1/annotation?annotation_id=<uuid>[&rev=<n>]: an outline (its latest revision)."""
    text = request.GET.get("annotation_id", "").strip()
    if not text:
        return json_error("give annotation_id", 400)
    found = _annotation(text)
    if found is None:
        return json_error("no such outline", 404)
    rev = request.GET.get("rev")
    if rev is None:
        number = found.revision
    else:
        if not rev.isdigit() or len(rev) > 9:
            return json_error("rev is a revision number, 1 or more", 400)
        number = int(rev)
    revision = AnnotationRevision.objects.filter(annotation=found, number=number).first()
    if revision is None:
        return json_error(f"this outline has revisions 1 to {found.revision}", 404)
    return JsonResponse(annotation_json(found, revision))


@api_write
@allow("PUT")
@api_identity
@limit("annotate", "ANNOTATION_RATE", methods=("PUT",))
def edit(request: HttpRequest, uuid) -> JsonResponse:
    """PUT /v1/annotation/<uuid> with {annotations: [shapes]}: a new revision."""
    found = _annotation(uuid)
    if found is None:
        return json_error("no such outline", 404)
    try:
        body = read_json(request)
        drawn = drawing.revise(found, request.voter, body.get("annotations"))
    except BadBody as error:
        return json_error(str(error), error.status)
    except drawing.DrawingRefused as refused:
        return json_error(refused.message, refused.status)
    return JsonResponse(drawn_json(drawn))
