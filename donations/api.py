"""/v1/ donation endpoints: donate, fetch a public picture, report one."""

from __future__ import annotations

import logging

from django import forms
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse

from people.http import (
    BadBody,
    allow,
    api_write,
    flag,
    is_storable_text,
    json_error,
    public_read,
    read_json,
)
from people.identity import api_identity, client_ip, ip_prefix
from people.ratelimits import limit

from .forms import parse_labels
from .ingest import ingest
from .models import Image, ImageCollection, Report
from .storage import PUBLIC_FILE_CACHE_CONTROL, STORE_ERRORS, public_storage
from .uploads import limit_upload_size, too_large_message
from .views import waiting_room_full

SIZES = ("thumb", "display", "master")
CC0_URL = "https://creativecommons.org/publicdomain/zero/1.0/"
DEDICATION = (
    "By donating you dedicate this picture to the public domain (CC0 1.0): anyone may "
    "use it for any purpose, without asking. " + CC0_URL
)
COLLECTION_MAX_LENGTH = 100
# Image collections belong to accounts; this server keeps none yet, so a donation's
# `image_collection` names a collection of the account whose API token sent the donation.


def collection_of(request: HttpRequest) -> str | None:
    """The donation's `image_collection`: a name of 1–100 characters, or None; ValueError."""
    if "image_collection" not in request.POST:
        return None
    name = request.POST["image_collection"].strip()
    if not name or len(name) > COLLECTION_MAX_LENGTH or not is_storable_text(name):
        raise ValueError(
            f"image_collection is a name of 1 to {COLLECTION_MAX_LENGTH} characters "
            "(no NUL or unpaired surrogate characters)"
        )
    return name


def check_dedication(request: HttpRequest) -> None:
    """A donation is dedicated to the public domain; `dedication`, when sent, says cc0."""
    value = request.POST.get("dedication")
    if value is not None and value.strip().lower() != "cc0":
        raise ValueError(
            "dedication: a donation is dedicated to the public domain; the only value is cc0"
        )


log = logging.getLogger(__name__)


@api_write
@allow("POST")
@api_identity(scope="donate")
@limit("donate", "DONATION_RATE")
def donate(request: HttpRequest) -> JsonResponse:
    """POST /v1/donate: multipart with one `image`, optional `label`, `add_sublabels`,
    `image_collection` and `dedication=cc0`. 200 with the uuid, as the original answered."""
    if not limit_upload_size(request):
        return json_error(too_large_message(), 413)
    files = request.FILES  # parsed now, under the size limit
    if request.upload_too_large:
        return json_error(too_large_message(), 413)
    uploads = files.getlist("image")
    if len(uploads) != 1 or len(files) != 1:
        return json_error("send exactly one file per request, in the field `image`", 400)
    try:
        labels, suggestions = parse_labels(request.POST.get("label", ""))
    except forms.ValidationError as error:
        return json_error(" ".join(error.messages), 400)
    try:
        # The original's bulk uploader sends it in the query string (?add_sublabels=false).
        in_body = "add_sublabels" in request.POST or "add_sublabels" not in request.GET
        add_sublabels = flag(request, "add_sublabels", in_body=in_body)
        collection = collection_of(request)
        check_dedication(request)
    except ValueError as error:
        return json_error(str(error), 400)
    if message := waiting_room_full(request):
        response = json_error(message, 503)
        response["Retry-After"] = "3600"
        return response
    outcome = ingest(
        uploads[0].read(),
        filename=uploads[0].name,
        donor=request.voter,
        network=ip_prefix(client_ip(request)),
        labels=labels,
        suggestions=suggestions,
        add_sublabels=add_sublabels,
    )
    if outcome.accepted:
        answer = {"uuid": str(outcome.image.uuid), "dedication": "cc0", "license": DEDICATION}
        if collection is not None:
            answer["image_collection"] = donated_into(request, collection, outcome.image)
        return JsonResponse(answer)
    if outcome.status == "duplicate":
        existing = outcome.existing
        extra = {"uuid": str(existing.uuid)} if existing and existing.is_public else {}
        return json_error(outcome.message, 409, **extra)
    return json_error(outcome.message, outcome.http_status)


def donated_into(request: HttpRequest, name: str, image: Image) -> dict:
    """Put a donation in the sender's collection `name`; what happened, for the answer."""
    token = getattr(request, "api_token", None)
    if token is None:
        reason = "collections belong to accounts: send one of your API tokens"
        return {"name": name, "added": False, "reason": reason}
    collection = ImageCollection.objects.named(token.user.username, name)
    if collection is None:
        reason = "you have no collection of that name: POST /v1/user/<name>/imagecollection"
        return {"name": name, "added": False, "reason": reason}
    collection.images.add(image)  # shown in it once a moderator approves the picture
    return {"name": collection.name, "added": True}


def pick_size(image: Image, width: int | None, height: int | None) -> str:
    """The smallest stored rendition that covers the requested box (never a resize)."""
    if width is None and height is None:
        return "master"
    for kind in SIZES:
        w, h = image.rendition_size(kind)
        if (width is None or w >= width) and (height is None or h >= height):
            return kind
    return "master"


def _dimension(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        raise ValueError(f"{name} must be a whole number of pixels between 1 and 100000")
    return int(value)


@public_read
def donation_image(request: HttpRequest, uuid) -> HttpResponse:
    """GET /v1/donation/<uuid>: the bytes of a public picture; ?width=&height= pick a stored size."""
    image = Image.objects.public().filter(uuid=uuid).first()
    if image is None:
        return json_error("no public picture with that id", 404)
    try:
        kind = pick_size(image, _dimension(request, "width"), _dimension(request, "height"))
    except ValueError as error:
        return json_error(str(error), 400)
    name = image.file_name(kind)
    storage = public_storage()
    accel = storage.accel_redirect(name)
    if accel is not None:
        response = HttpResponse(content_type=image.content_type)
        response["X-Accel-Redirect"] = accel
    else:
        try:
            response = FileResponse(storage.open(name), content_type=image.content_type)
        except FileNotFoundError:
            return json_error("the picture's file is missing; it has been reported", 404)
        except STORE_ERRORS:
            log.exception("public file %s not read: the media store failed", name)
            response = json_error("the picture cannot be read just now; try again", 503)
            response["Retry-After"] = "60"
            return response
    response["Cache-Control"] = PUBLIC_FILE_CACHE_CONTROL
    response["Content-Disposition"] = f'inline; filename="{image.uuid}.{image.extension}"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


REASON_WORDS = {choice.value for choice in Report.Reason}


@api_write
@allow("POST")
@api_identity(scope="vote")
@limit("report", "REPORT_RATE")
def report(request: HttpRequest, uuid) -> JsonResponse:
    """POST /v1/report/<uuid> with {"reason": "..."}; 200, as the original answered."""
    image = Image.objects.public().filter(uuid=uuid).first()
    if image is None:
        return json_error("no public picture with that id", 404)
    try:
        body = read_json(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return json_error('give a reason, e.g. {"reason": "shows a person\'s face"}', 400)
    if not is_storable_text(reason):
        return json_error("the reason may not contain NUL or unpaired surrogate characters", 400)
    reason = reason.strip()[:1000]
    kind = reason.lower() if reason.lower() in REASON_WORDS else Report.Reason.OTHER
    try:
        image.report(
            reporter=request.voter,
            reason=kind,
            text="" if kind != "other" else reason,
            network=ip_prefix(client_ip(request)),
        )
    except IntegrityError:
        return json_error("you have already reported this picture", 409)
    return JsonResponse({"reported": True})


# --- image collections (the original's, per account) ----------------------------------

COLLECTION_NAME_MAX = 100


def _collection_owner(request: HttpRequest, username: str) -> JsonResponse | None:
    """A refusal unless the call's API token belongs to `username`."""
    if request.api_token is None:
        return json_error("send one of your API tokens as Authorization: Bearer …", 401)
    if request.api_token.user.username.lower() != username.lower():
        return json_error("a token acts only for its own account", 403)
    return None


def _collection_json(collection: ImageCollection, count: int) -> dict:
    return {
        "name": collection.name,
        "description": collection.description,
        "owner": collection.owner.username,
        "images": count,
        "query": f"image.collection='{collection.owner.username}/{collection.name}'",
    }


@public_read
def image_collections(request: HttpRequest, username: str) -> JsonResponse:
    """GET /v1/user/<name>/imagecollections: the account's collections."""
    users = get_user_model().objects.filter(username__iexact=username, is_active=True)
    if not is_storable_text(username) or not users.exists():
        return json_error("no such user", 404)
    collections = (
        ImageCollection.objects.of_username(username)
        .select_related("owner")
        .annotate(public_images=Count("images", filter=Q(images__status=Image.Status.PUBLIC)))
    )
    return JsonResponse([_collection_json(c, c.public_images) for c in collections], safe=False)


@public_read
def image_collection(request: HttpRequest, username: str, name: str) -> JsonResponse:
    """GET /v1/user/<name>/imagecollection/<collection>: its public pictures."""
    collection = ImageCollection.objects.named(username, name)
    if collection is None:
        return json_error("no such collection", 404)
    uuids = [str(u) for u in collection.images.public().values_list("uuid", flat=True)]
    return JsonResponse({**_collection_json(collection, len(uuids)), "uuids": uuids})


@api_write
@allow("POST")
@api_identity(scope="annotate")
def create_image_collection(request: HttpRequest, username: str) -> JsonResponse:
    """POST /v1/user/<name>/imagecollection {"name", "description"?} → 201."""
    if refused := _collection_owner(request, username):
        return refused
    try:
        body = read_json(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    name, description = body.get("name"), body.get("description", "")
    if (
        not isinstance(name, str)
        or not name.strip()
        or "/" in name
        or len(name) > COLLECTION_NAME_MAX
        or not is_storable_text(name)
    ):
        return json_error(
            f"name is a text of 1 to {COLLECTION_NAME_MAX} characters without '/'", 400
        )
    if (
        not isinstance(description, str)
        or len(description) > 500
        or not is_storable_text(description)
    ):
        return json_error("description is a text of at most 500 characters", 400)
    owner = request.api_token.user
    try:
        with transaction.atomic():
            collection = ImageCollection.objects.create(
                owner=owner, name=name.strip(), description=description
            )
    except IntegrityError:
        return json_error("you have a collection of that name already", 409)
    return JsonResponse(_collection_json(collection, 0), status=201)


@api_write
@allow("POST")
@api_identity(scope="annotate")
def add_to_image_collection(request: HttpRequest, username: str, name: str, uuid) -> JsonResponse:
    """POST /v1/user/<name>/imagecollection/<collection>/image/<uuid>: add a public picture."""
    if refused := _collection_owner(request, username):
        return refused
    collection = ImageCollection.objects.named(username, name)
    if collection is None:
        return json_error("no such collection", 404)
    image = Image.objects.public().filter(uuid=uuid).first()
    if image is None:
        return json_error("no such public picture", 404)
    collection.images.add(image)
    return JsonResponse({"added": str(image.uuid)})
