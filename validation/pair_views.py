"""/v1/validation… : image–label pairs by their public id, in the late original API's shapes.

The original addressed a pair by `image_validation.uuid`; ours is `ImageLabel.uuid`,
random for every pair alike. What differs from the original, and why:

- A vote still needs the ticket of a task served to its voter (validation.tickets):
  `GET /v1/validation` serves one, chosen as `/v1/validate` chooses. A pair named by
  id (`?validation_id=`, `/v1/validation/<uuid>`) is described, never served with a
  ticket, so nobody votes on a pair of their choosing.
- A served task carries no counts: they would sway the answer, and a settled pair among
  the tasks would stand out. A pair named by id shows its public counts, as its
  picture's page does.
"""

from __future__ import annotations

import random
import uuid as uuid_module

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from donations.models import Image, ImageLabel
from exports.export import TooSlow, bounded
from exports.query import LabelQuery, QueryError, compose
from labels.models import Label
from people.http import (
    BadBody,
    allow,
    api_write,
    flag,
    json_error,
    parse_uuid,
    public_read,
    read_json,
)
from people.identity import api_identity, client_ip, ip_prefix
from people.ratelimits import limit, spend

from . import selection, tickets
from .api import GRID_LIMIT_MAX, label_json, ticket_of
from .models import Vote
from .voting import VoteRefused, counts_for, record_vote

IMAGE_PATH = "/v1/donation/"
NOTHING_LEFT = "nothing left to validate for you right now"
UNKNOWN = "no public pair with that id"
PAGE_DEFAULT = 50
PAGE_MAX = 100


def _image_json(request: HttpRequest, image: Image) -> dict:
    return {
        "uuid": str(image.uuid),
        "provider": "donation",
        "unlocked": True,
        "url": request.build_absolute_uri(f"{IMAGE_PATH}{image.uuid}"),
        "width": image.width,
        "height": image.height,
    }


def task_json(request: HttpRequest, pair: ImageLabel, network: str) -> dict:
    """A served task: the pair, its picture and the ticket its vote presents (no counts)."""
    return {
        "uuid": str(pair.uuid),
        "image": _image_json(request, pair.image),
        **label_json(pair.label),
        "ticket": tickets.issue(request.voter, pair, network),
    }


def described_json(request: HttpRequest, pair: ImageLabel) -> dict:
    """A pair named by id: its picture, label and public counts (no ticket)."""
    return {
        "uuid": str(pair.uuid),
        "image": _image_json(request, pair.image),
        **label_json(pair.label),
        "num_yes": pair.num_yes,
        "num_no": pair.num_no,
    }


def _on_public_pictures():
    """Pairs a vote may name: on a public picture (voting says whether it is open)."""
    return ImageLabel.objects.filter(image__status=Image.Status.PUBLIC)


def _public_pairs():
    """Pairs anyone may see: on a public picture, with a taggable label (gold or not)."""
    return ImageLabel.objects.filter(
        image__status=Image.Status.PUBLIC, label__in=Label.objects.taggable()
    ).select_related("image", "label__parent")


@public_read
@api_identity
def next_validation(request: HttpRequest) -> JsonResponse:
    """GET /v1/validation: the caller's next task; ?validation_id= describes that pair."""
    if "validation_id" in request.GET:
        wanted = parse_uuid(request.GET["validation_id"])
        if wanted is None:
            return json_error("validation_id is a pair's uuid", 400)
        return describe(request, wanted)
    pair = selection.next_task(request.voter)
    if pair is None:
        return json_error(NOTHING_LEFT, 404)
    return JsonResponse(task_json(request, pair, ip_prefix(client_ip(request))))


@public_read
def validation(request: HttpRequest, uuid) -> JsonResponse:
    """GET /v1/validation/<uuid>: the pair, its picture and its public counts."""
    return describe(request, uuid)


def describe(request: HttpRequest, uuid) -> JsonResponse:
    pair = _public_pairs().filter(uuid=uuid).first()
    if pair is None:
        return json_error(UNKNOWN, 404)
    return JsonResponse(described_json(request, pair))


def _body(request: HttpRequest) -> dict:
    """The optional JSON body of a vote (it may carry the `ticket`); BadBody otherwise."""
    return read_json(request) if request.body else {}


@api_write
@allow("POST")
@api_identity(scope="vote")
@limit("vote", "VOTE_RATE")
def vote(request: HttpRequest, uuid, answer: str) -> JsonResponse:
    """POST /v1/validation/<uuid>/validate/<yes|no>, with the task's ticket."""
    try:
        body = _body(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    pair = _on_public_pictures().filter(uuid=uuid).select_related("label__parent").first()
    if pair is None:
        return json_error(UNKNOWN, 404)
    choice = Vote.Answer.YES if answer == "yes" else Vote.Answer.NO
    try:
        result = record_vote(
            pair,
            request.voter,
            choice,
            ip_prefix(client_ip(request)),
            ticket=ticket_of(request, body),
        )
    except VoteRefused as refused:
        return json_error(refused.message, refused.status)
    # As for /v1/donation/<uuid>/validate: "counted" speaks of the voter, not the pair.
    return JsonResponse(
        {
            "uuid": str(uuid),
            **label_json(pair.label),
            "valid": answer,
            "replaced": result.replaced,
            "counted": counts_for(request.voter),
        }
    )


@api_write
@allow("PATCH")
@api_identity(scope="vote")
@limit("vote", "VOTE_RATE")
def vote_many(request: HttpRequest) -> HttpResponse:
    """PATCH /v1/validation/validate: {"validations": [{uuid, valid, ticket}]}, all or nothing."""
    try:
        body = read_json(request)
        items = body.get("validations")
        if not isinstance(items, list) or not items:
            raise ValueError("validations must be a non-empty list of {uuid, valid, ticket}")
        if len(items) > GRID_LIMIT_MAX:
            raise ValueError(f"at most {GRID_LIMIT_MAX} validations at once")
        answers = []
        for item in items:
            wanted = parse_uuid(item.get("uuid")) if isinstance(item, dict) else None
            if wanted is None or item.get("valid") not in ("yes", "no"):
                raise ValueError(
                    'each validation is {"uuid": "<pair uuid>", "valid": "yes"|"no", '
                    '"ticket": "..."}'
                )
            answers.append((wanted, item["valid"], ticket_of(request, item)))
    except BadBody as error:
        return json_error(str(error), error.status)
    except ValueError as error:
        return json_error(str(error), 400)
    if len({wanted for wanted, _, _ in answers}) != len(answers):
        return json_error("each pair may be answered once per batch", 400)
    pairs = _on_public_pictures().in_bulk([wanted for wanted, _, _ in answers], field_name="uuid")
    if len(pairs) != len(answers):
        return json_error(f"nothing was recorded: {UNKNOWN}", 404)
    if refused := spend(request, "vote", "VOTE_RATE", len(answers) - 1):  # each vote counts
        return refused
    prefix = ip_prefix(client_ip(request))
    try:
        with transaction.atomic():
            # One lock order for every batch, whatever order it names the pairs in.
            for wanted, valid, ticket in sorted(answers, key=lambda item: pairs[item[0]].pk):
                choice = Vote.Answer.YES if valid == "yes" else Vote.Answer.NO
                record_vote(pairs[wanted], request.voter, choice, prefix, ticket=ticket)
    except VoteRefused as refused:
        return json_error(f"nothing was recorded: {refused.message}", refused.status)
    return HttpResponse(status=204)  # the original's answer


_PAGE_SQL = """
SELECT p.id FROM validation_imagelabel p JOIN donations_image img ON img.id = p.image_id
WHERE p.label_id = ANY(%s) AND p.uuid {side} %s AND """


def _page_ids(query: LabelQuery, start: uuid_module.UUID, size: int, wrap: bool) -> list[int]:
    """Up to `size` pair ids of the query's labels on its matching pictures, in uuid order
    from `start` (wrapping round once when `wrap`)."""
    # Only labels that may be shown, so that a page is never cut short after the query.
    labels = list(
        Label.objects.taggable()
        .filter(pk__in=query.requested_label_ids)
        .values_list("pk", flat=True)
    )
    ids: list[int] = []
    if not labels:
        return ids
    with bounded(), connection.cursor() as cursor:
        for side in (">", "<=") if wrap else (">",):
            sql = compose(
                _PAGE_SQL.format(side=side),
                query.condition(min_probability=0.0, min_confidence=0.0),
                " ORDER BY p.uuid LIMIT %s",
            )
            cursor.execute(sql.text, [labels, start, *sql.params, size - len(ids)])
            ids += [row[0] for row in cursor.fetchall()]
            if len(ids) >= size:
                break
    return ids


@public_read
@limit("validations", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def validations(request: HttpRequest) -> JsonResponse:
    """GET /v1/validations?query=&shuffle=&limit=&after=: pairs of the query's labels on the
    public pictures it matches, a page at a time (in uuid order, or from a random point)."""
    text = request.GET.get("query", "").strip()
    if not text:
        return json_error("a query is required, e.g. dog | cat", 400)
    try:
        query = LabelQuery.parse(text)
    except QueryError as error:
        return json_error(error.message, 400, position=error.position)
    if not query.requested_label_ids:
        return json_error("name at least one label outside ~ (not)", 400)
    try:
        shuffle = flag(request, "shuffle")
        size = int(request.GET.get("limit", PAGE_DEFAULT))
    except ValueError as error:
        message = str(error) if "true or false" in str(error) else "limit is a whole number"
        return json_error(message, 400)
    if not 1 <= size <= PAGE_MAX:
        return json_error(f"limit must be between 1 and {PAGE_MAX}", 400)
    after = request.GET.get("after")
    if after is not None and (shuffle or parse_uuid(after) is None):
        return json_error("after is the uuid of the last pair of the page before (no shuffle)", 400)
    if shuffle:
        start, wrap = uuid_module.UUID(int=random.getrandbits(128)), True
    else:
        start, wrap = (parse_uuid(after) if after else uuid_module.UUID(int=0)), False
    try:
        ids = _page_ids(query, start, size, wrap)
    except TooSlow:
        response = json_error("this query took too long; try a simpler one", 503)
        response["Retry-After"] = "60"
        return response
    pairs = _public_pairs().in_bulk(ids)
    rows = [pairs[pk] for pk in ids if pk in pairs]
    return JsonResponse(
        [
            {
                "uuid": str(pair.uuid),
                "num_of_yes": pair.num_yes,
                "num_of_no": pair.num_no,
                "image": _image_json(request, pair.image),
                "label": {
                    "name": label_json(pair.label)["label"],
                    "sublabel": label_json(pair.label)["sublabel"],
                },
            }
            for pair in rows
        ],
        safe=False,
    )
