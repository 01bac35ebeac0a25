"""/v1/ validation endpoints, in the original ImageMonkey's shapes.

API calls identify their voter by the `X-Voter-Token` header only, never by
the session cookie, so another site cannot make a visitor's browser vote
(that is why these views need no CSRF token). A call without a token acts
as a fresh anonymous voter, in training like any new voter.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from donations.models import Image, ImageLabel
from labels.lookup import label_json, resolve_pair_label
from labels.models import Label
from people.http import BadBody, allow, api_write, flag, json_error, public_read, read_json
from people.identity import api_identity, client_ip, ip_prefix
from people.models import Voter
from people.ratelimits import limit, spend

from . import selection, statistics, tickets
from .models import Vote
from .voting import REFUSALS, VoteRefused, counts_for, record_vote

TICKET_HEADER = "HTTP_X_TASK_TICKET"
GRID_LIMIT_DEFAULT = 20
GRID_LIMIT_MAX = 100


def pair_json(pair: ImageLabel, voter: Voter, network: str) -> dict:
    """A task in the original API's shape, with the ticket its vote must present."""
    return {
        "uuid": str(pair.image.uuid),
        **label_json(pair.label),
        "provider": "donation",
        "ticket": tickets.issue(voter, pair, network),
    }


@api_write
@allow("POST")
@limit("voter", "VOTER_RATE", by_address_only=True)
@limit("voter-network", "VOTER_NETWORK_RATE", by_network=True)
def voter(request: HttpRequest) -> JsonResponse:
    """POST /v1/voter → a new pseudonymous voter and its token (shown once)."""
    created, token = Voter.create_with_token(first_ip_prefix=ip_prefix(client_ip(request)))
    return JsonResponse({"token": token, "header": "X-Voter-Token"}, status=201)


@public_read
@api_identity
def next_validation(request: HttpRequest) -> JsonResponse:
    """GET /v1/validate: the caller's next task, or a grid of one label (?grouped=true)."""
    caller = request.voter
    label = None
    if name := request.GET.get("label", "").strip():
        label = Label.objects.resolve(name)
        if label is None:
            return json_error(f"unknown label: {name[:100]}", 404)
    try:
        grouped = flag(request, "grouped")
        limit = request.GET.get("limit")
        size = GRID_LIMIT_DEFAULT if limit is None else int(limit)
    except ValueError as error:
        message = str(error) if "true or false" in str(error) else "limit must be a whole number"
        return json_error(message, 400)
    if not 1 <= size <= GRID_LIMIT_MAX:
        return json_error(f"limit must be between 1 and {GRID_LIMIT_MAX}", 400)
    network = ip_prefix(client_ip(request))
    if grouped:
        if label is None:
            # No label named: group by the label of the caller's next task.
            task = selection.next_task(caller)
            if task is None:
                return json_error("nothing left to validate for you right now", 404)
            label = task.label
        pairs = selection.grid_tasks(caller, label, size)
        return JsonResponse(
            {
                "label": label.parent.name if label.parent_id else label.name,
                "sublabel": label.name if label.parent_id else "",
                "donations": [
                    {
                        "uuid": str(p.image.uuid),
                        "provider": "donation",
                        "width": p.image.width,
                        "height": p.image.height,
                        "ticket": tickets.issue(caller, p, network),
                    }
                    for p in pairs
                ],
            }
        )
    pair = selection.next_task(caller, label)
    if pair is None:
        return json_error("nothing left to validate for you right now", 404)
    return JsonResponse(pair_json(pair, caller, ip_prefix(client_ip(request))))


def _find_pair(image_uuid, label: Label) -> ImageLabel:
    pair = (
        ImageLabel.objects.select_related("image", "label")
        .filter(image__uuid=image_uuid, image__status=Image.Status.PUBLIC, label=label)
        .first()
    )
    if pair is None:
        raise LookupError(REFUSALS["not_found"][0])
    return pair


@api_write
@allow("POST")
@api_identity
@limit("vote", "VOTE_RATE")
def vote(request: HttpRequest, uuid, answer: str) -> JsonResponse:
    """POST /v1/donation/<uuid>/validate/<yes|no> with {"label", "sublabel"}."""
    try:
        body = read_json(request)
        label = resolve_pair_label(body)
    except BadBody as error:
        return json_error(str(error), error.status)
    except ValueError as error:
        return json_error(str(error), 400)
    except LookupError as error:
        return json_error(str(error.args[0]), 404)
    choice = Vote.Answer.YES if answer == "yes" else Vote.Answer.NO
    try:
        result = record_vote(
            None,
            request.voter,
            choice,
            ip_prefix(client_ip(request)),
            ticket=ticket_of(request, body),
            image_uuid=uuid,
            label_id=label.pk,
        )
    except VoteRefused as refused:
        return json_error(refused.message, refused.status)
    # "counted" says whether this voter's votes carry weight, not what became of this
    # one: a vote held out (its pair settled meanwhile, a gold pair, a quarantine)
    # answers the same, so the answer tells nothing of the pair.
    return vote_json(uuid, label, answer, result.replaced, counts_for(request.voter))


def ticket_of(request: HttpRequest, item: dict) -> str | None:
    """The task ticket a vote presents: the body's (or item's) `ticket`, else X-Task-Ticket."""
    ticket = item.get("ticket")
    return ticket if ticket is not None else request.META.get(TICKET_HEADER)


def vote_json(uuid, label: Label, answer: str, replaced: bool, counted: bool) -> JsonResponse:
    """The original API's answer to a vote: the pair, the answer, and what became of it."""
    return JsonResponse(
        {
            "uuid": str(uuid),
            **label_json(label),
            "provider": "donation",
            "valid": answer,
            "replaced": replaced,
            "counted": counted,
        }
    )


@api_write
@allow("PATCH")
@api_identity
@limit("vote", "VOTE_RATE")
def vote_many(request: HttpRequest) -> JsonResponse:
    """PATCH /v1/donation/validate: several answers on one label, all or nothing."""
    try:
        body = read_json(request)
        label = resolve_pair_label(body)
        items = body.get("validations")
        if not isinstance(items, list) or not items:
            raise ValueError("validations must be a non-empty list of {uuid, valid}")
        if len(items) > GRID_LIMIT_MAX:
            raise ValueError(f"at most {GRID_LIMIT_MAX} validations at once")
        answers = []
        for item in items:
            if not isinstance(item, dict) or item.get("valid") not in ("yes", "no"):
                raise ValueError(
                    'each validation is {"uuid": "...", "valid": "yes"|"no", "ticket": "..."}'
                )
            answers.append((str(item.get("uuid", "")), item["valid"], ticket_of(request, item)))
        pairs = [(_find_pair(_uuid(text), label), valid, ticket) for text, valid, ticket in answers]
    except BadBody as error:
        return json_error(str(error), error.status)
    except ValueError as error:
        return json_error(str(error), 400)
    except LookupError as error:
        return json_error(str(error.args[0]), 404)
    if refused := spend(request, "vote", "VOTE_RATE", len(pairs) - 1):  # each vote counts
        return refused
    caller = request.voter
    prefix = ip_prefix(client_ip(request))
    try:
        with transaction.atomic():
            # Lock the pairs in one order, whatever order the batch names them in, so
            # two batches over the same pairs never wait for each other's locks.
            for pair, valid, ticket in sorted(pairs, key=lambda item: item[0].pk):
                answer = Vote.Answer.YES if valid == "yes" else Vote.Answer.NO
                record_vote(pair, caller, answer, prefix, ticket=ticket)
    except VoteRefused as refused:
        return json_error(f"nothing was recorded: {refused.message}", refused.status)
    return JsonResponse({"recorded": len(pairs)})


def _uuid(text: str):
    try:
        return uuid.UUID(text)
    except ValueError:
        raise LookupError(f"not a picture id: {text[:40]}") from None


@public_read
@api_identity
def me(request: HttpRequest) -> JsonResponse:
    """GET /v1/me: the calling voter's numbers (a call without a token is a new voter)."""
    caller = request.token_voter
    if caller is None:
        return JsonResponse({"votes": 0, "gold_answered": 0, "trusted": False})
    numbers = statistics.voter_numbers(caller)
    return JsonResponse(
        {
            "votes": numbers["votes"],
            "gold_answered": numbers["gold_answered"],
            "trusted": counts_for(caller),
            "agreement": numbers["agreement"],
        }
    )
