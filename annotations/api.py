"""/v1/ annotation endpoints, in the original ImageMonkey's 2021 shapes.

Like every API write, these identify their voter by the X-Voter-Token header only
(people.identity.api_identity); a call without one acts as a fresh anonymous voter.
"""

from __future__ import annotations

import uuid as uuid_module

from django.db import models
from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from donations.models import Image, ImageLabel
from exports.query import LabelQuery, QueryError, Sql
from labels.lookup import label_json, resolve_pair_label
from labels.models import Label
from people.http import BadBody, allow, api_write, json_error, parse_uuid, public_read, read_json
from people.identity import api_identity, client_ip, ip_prefix
from people.ratelimits import limit, spend
from validation.voting import counts_for

from . import drawing, selection, tasks, voting
from .models import Annotation, AnnotationRevision, AnnotationVote

MAX_ITEMS = 20  # labels outlined in one POST
TICKET_HEADER = "HTTP_X_TASK_TICKET"
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 200


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
        **_counts(annotation, revision),
        "created": revision.created.isoformat(),
    }


def _counts(annotation: Annotation, revision: AnnotationRevision) -> dict:
    """The counted votes of a revision: the outline's own numbers for the latest one, and
    what an earlier one had before it was replaced."""
    if revision.number == annotation.revision:
        return {"num_yes": annotation.num_yes, "num_no": annotation.num_no}
    counted = AnnotationVote.objects.filter(
        annotation=annotation, revision=revision.number, counted=True
    )
    return {
        "num_yes": counted.filter(answer=AnnotationVote.Answer.YES).count(),
        "num_no": counted.filter(answer=AnnotationVote.Answer.NO).count(),
    }


@public_read
@api_identity
def annotation(request: HttpRequest) -> JsonResponse:
    """GET /v1/annotation?annotation_id=<uuid>[&rev=<n>]: an outline (its latest revision).

    Without annotation_id, the original's checking task: an outline for the caller to
    check (`?label=` for one label), with the ticket its vote must present.
    """
    text = request.GET.get("annotation_id", "").strip()
    if not text:
        return _outline_to_check(request)
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


def _label_asked(request: HttpRequest) -> Label | None:
    """The label `?label=` (a name, or dog/eye) or `?label_id=` names; LookupError if none."""
    if name := request.GET.get("label", "").strip():
        label = Label.objects.resolve(name)
        if label is None:
            raise LookupError(f"unknown label: {name[:100]}")
        return label
    if "label_id" in request.GET:
        text = request.GET["label_id"]
        known = text.isdigit() and len(text) <= 18
        label = Label.objects.taggable().filter(pk=int(text)).first() if known else None
        if label is None:
            raise LookupError(f"unknown label_id: {text[:40]}")
        return label
    return None


def _outline_to_check(request: HttpRequest) -> JsonResponse:
    try:
        label = _label_asked(request)
    except LookupError as error:
        return json_error(str(error.args[0]), 404)
    found = selection.outline_to_check(request.voter, label)
    if found is None:
        return json_error("nothing left to check for you right now", 404)
    revision = found.latest()
    network = ip_prefix(client_ip(request))
    return JsonResponse(
        {
            **annotation_json(found, revision),
            "ticket": voting.check_ticket(request.voter, found, network),
        }
    )


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


@api_write
@allow("POST")
@api_identity
@limit("vote", "VOTE_RATE")
def check(request: HttpRequest, uuid, answer: str) -> JsonResponse:
    """POST /v1/annotation/<uuid>/validate/<yes|no>, with the task's ticket (body or header)."""
    try:
        body = read_json(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    ticket = body.get("ticket")
    if ticket is None:
        ticket = request.META.get(TICKET_HEADER)
    choice = {"yes": voting.Answer.YES, "no": voting.Answer.NO}[answer]
    try:
        result = voting.record_vote(
            uuid, request.voter, choice, ip_prefix(client_ip(request)), ticket=ticket
        )
    except voting.VoteRefused as refused:
        return json_error(refused.message, refused.status)
    # As for pairs, "counted" is about the voter, not the vote: it tells nothing of
    # whether the outline is gold or settled.
    return JsonResponse(
        {
            "annotation_id": str(result.annotation.uuid),
            "revision": result.vote.revision,
            "valid": answer,
            "replaced": result.replaced,
            "counted": counts_for(request.voter),
        }
    )


def task_json(pair: ImageLabel, ticket: str) -> dict:
    """A pair to outline, in the original /v1/annotate shape, with its ticket."""
    return {
        "uuid": str(pair.image.uuid),
        "provider": "donation",
        "width": pair.image.width,
        "height": pair.image.height,
        "url": pair.image.display_url,
        **label_json(pair.label),
        "validation_id": str(pair.uuid),
        "ticket": ticket,
    }


@public_read
@api_identity
def next_outline(request: HttpRequest) -> JsonResponse:
    """GET /v1/annotate[?label=|label_id=|validation_id=]: a validated pair to outline."""
    try:
        label = _label_asked(request)
    except LookupError as error:
        return json_error(str(error.args[0]), 404)
    chosen = "validation_id" in request.GET
    if chosen:
        wanted = parse_uuid(request.GET["validation_id"])
        if wanted is None:
            return json_error("validation_id is a pair's uuid", 400)
        pair = selection.pair_for_outlining(request.voter, uuid=wanted)
        if pair is None:
            return json_error("no such validated pair to outline", 404)
    else:
        pair = selection.pair_to_outline(request.voter, label)
        if pair is None:
            return json_error("nothing left to outline right now", 404)
    network = ip_prefix(client_ip(request))
    ticket = drawing.draw_ticket(request.voter, pair, network, chosen=chosen)
    return JsonResponse(task_json(pair, ticket))


@api_write
@allow("POST")
@api_identity
@limit("annotate", "ANNOTATION_RATE")
def not_annotatable(request: HttpRequest, pair_uuid) -> JsonResponse:
    """POST /v1/validation/<pair uuid>/not-annotatable: this cannot be outlined."""
    try:
        body = read_json(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    pair = selection.pair_for_outlining(request.voter, uuid=pair_uuid)
    if pair is None:
        return json_error("no such validated pair to outline", 404)
    ticket = body.get("ticket")
    if ticket is None:
        ticket = request.META.get(TICKET_HEADER)
    tasks.say_not_annotatable(pair, request.voter, ip_prefix(client_ip(request)), ticket)
    return JsonResponse({"validation_id": str(pair.uuid), "not_annotatable": True})


@public_read
@limit("export", "EXPORT_RATE", methods=("GET",), by_address_only=True)
def browse(request: HttpRequest) -> JsonResponse:
    """GET /v1/annotations?query=<expression>[&limit=n]: the newest outlines of the query's
    labels on the public pictures it matches, at most LIST_LIMIT_MAX."""
    text = request.GET.get("query", "").strip()
    if not text:
        return json_error("give a query, e.g. ?query=dog", 400)
    limit_text = request.GET.get("limit", str(LIST_LIMIT_DEFAULT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= LIST_LIMIT_MAX:
        return json_error(f"limit must be between 1 and {LIST_LIMIT_MAX}", 400)
    try:
        query = LabelQuery.parse(text)
    except QueryError as error:
        return json_error(str(error), 400, position=error.position)
    labels = query.requested_label_ids
    if not labels:
        return json_error("the query names no label to look for (only negations)", 400)
    condition = query.condition()
    sql = (
        Sql(
            "SELECT a.id FROM annotations_annotation a "
            "JOIN validation_imagelabel ap ON ap.id = a.pair_id "
            "JOIN donations_image img ON img.id = ap.image_id "
            "WHERE ap.label_id = ANY(%s) AND ",
            [labels],
        )
        + condition
        + Sql(" ORDER BY a.id DESC LIMIT %s", [int(limit_text)])
    )
    ids = [row.pk for row in Annotation.objects.raw(sql.text, sql.params)]
    found = Annotation.objects.select_related("pair__image", "pair__label__parent").in_bulk(ids)
    latest = {
        r.annotation_id: r
        for r in AnnotationRevision.objects.filter(annotation_id__in=ids).filter(
            number=models.F("annotation__revision")
        )
    }
    return JsonResponse(
        {
            "query": str(query),
            "annotations": [
                annotation_json(found[pk], latest[pk]) for pk in ids if pk in found and pk in latest
            ],
        }
    )
