"""Donate, see your donations, browse public images, report one."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import IntegrityError
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.static import serve

from labels import lookup
from labels.models import Label
from people.http import is_storable_text, wants_json
from people.identity import client_ip, ip_prefix
from people.pagecache import anonymous_page_cache
from people.ratelimits import limit, spend

from . import decoding
from .forms import DonationForm, ReportForm, parse_labels
from .ingest import Outcome, ingest
from .models import Image, ImageLabel, ModerationConflict
from .pairs import label_by_donor
from .storage import (
    PRIVATE_FILE_CACHE_CONTROL,
    PUBLIC_FILE_CACHE_CONTROL,
    STORE_ERRORS,
    private_storage,
)
from .uploads import limit_upload_size, too_large_message

PAGE_SIZE = 48
BATCH_RE = re.compile(r"^[0-9a-f]{16}$")

log = logging.getLogger(__name__)


WAITING_ROOM_FULL = {
    "site": (
        "So many pictures are waiting for review that we cannot take more from anonymous "
        "donors right now. Please try again later — thank you for your patience."
    ),
    "network": (
        "So many pictures from your network are waiting for review that we cannot take "
        "more from it right now. Please try again once a moderator has looked at them."
    ),
}


def waiting_room_full(request: HttpRequest) -> str | None:
    """The reason, in words, that this donor's upload must wait; None when it may come in."""
    why = Image.objects.waiting_room_full(request.voter, ip_prefix(client_ip(request)))
    return WAITING_ROOM_FULL[why] if why else None


def outcome_summary(outcome: Outcome) -> dict:
    image = outcome.image or outcome.existing
    public = image is not None and image.is_public
    return {
        "filename": outcome.filename,
        "status": outcome.status,
        "message": outcome.message,
        "uuid": str(image.uuid) if image else None,
        "url": image.get_absolute_url() if public else None,
        "labels": outcome.labels,
        "suggestions": outcome.suggestions,
        "similar": str(outcome.similar.uuid) if outcome.similar else None,
    }


def render_donate(
    request: HttpRequest, form: DonationForm, status: int = 200, page_error: str = ""
) -> HttpResponse:
    context = {
        "form": form,
        "label_datalist": lookup.label_datalist(),
        "page_error": page_error,
        "max_upload_mb": settings.MAX_UPLOAD_MB,
        "max_files": settings.MAX_FILES_PER_DONATION,
        "max_upload_bytes": settings.MAX_UPLOAD_MB * 1024 * 1024,
        "master_side": settings.IMAGE_MASTER_MAX_SIDE,
    }
    return render(request, "donations/donate.html", context, status=status)


@csrf_exempt  # checked in donate_post, after the upload size limit is in place
@limit("donate", "DONATION_RATE")
@require_http_methods(["GET", "POST"])
def donate(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render_donate(request, DonationForm())
    if not limit_upload_size(request):
        return upload_too_large(request)
    request.FILES  # noqa: B018 - parse the body now, under the size limit
    if request.upload_too_large:
        return upload_too_large(request)
    with decoding.shared_budget():  # all the files of one donation share its decoding time
        return donate_post(request)


def upload_too_large(request: HttpRequest) -> HttpResponse:
    message = too_large_message()
    if wants_json(request):
        return JsonResponse({"error": message}, status=413)
    return render_donate(request, DonationForm(), status=413, page_error=message)


@csrf_protect
def donate_post(request: HttpRequest) -> HttpResponse:
    # Every file sent counts against the donation limit, not only the request.
    sent = len(request.FILES.getlist("images"))
    if refused := spend(request, "donate", "DONATION_RATE", sent - 1):
        return refused
    form = DonationForm(request.POST, request.FILES)
    if message := waiting_room_full(request):
        if wants_json(request):
            response = JsonResponse({"error": message}, status=503)
        else:
            response = render_donate(request, form, status=503, page_error=message)
        response["Retry-After"] = "3600"
        return response
    if not form.is_valid():
        if wants_json(request):
            errors = "; ".join(e for field in form.errors.values() for e in field)
            return JsonResponse({"error": errors}, status=400)
        return render_donate(request, form, status=400)
    outcomes = [
        ingest(
            upload.read(),
            filename=upload.name,
            donor=request.voter,
            network=ip_prefix(client_ip(request)),
            labels=form.labels_found,
            suggestions=form.suggestions,
            add_sublabels=form.cleaned_data["add_sublabels"],
        )
        for upload in form.cleaned_data["images"]
    ]
    batch = request.POST.get("batch", "")
    if not BATCH_RE.match(batch):
        batch = secrets.token_hex(8)
    key = f"donations:{batch}"
    stored = request.session.get(key, [])
    stored += [outcome_summary(outcome) for outcome in outcomes]
    request.session[key] = stored[-200:]
    if wants_json(request):
        summary = outcome_summary(outcomes[0])
        summary["result_url"] = reverse("donations:result", args=[batch])
        status = outcomes[0].http_status if not outcomes[0].accepted else 201
        return JsonResponse(summary, status=status)
    return redirect("donations:result", batch=batch)


@require_safe
def donor_thumbnail(request: HttpRequest, uuid) -> HttpResponse:
    """The thumbnail of a picture for the donor who sent it, while no one else may see it.

    Not a public URL: it answers only the donor's own session (or account), never is
    cached by anyone else, and a public picture redirects to its public file."""
    donor = request.voter
    image = Image.objects.donated_by(donor).filter(uuid=uuid).first()
    if image is None or image.status not in (Image.Status.PENDING, Image.Status.PUBLIC):
        raise Http404("No such picture of yours.")
    if image.is_public:
        return redirect(image.thumb_url)
    return private_file_response(image, "thumb")


@require_POST
def withdraw(request: HttpRequest, uuid) -> HttpResponse:
    """A donor takes back a picture they just sent ("Remove" during an upload)."""
    image = Image.objects.filter(uuid=uuid).first()
    try:
        if image is None:
            raise ModerationConflict("There is no such picture.")
        image.withdraw(request.voter)
    except ModerationConflict as conflict:
        if wants_json(request):
            return JsonResponse({"error": str(conflict)}, status=409)
        messages.error(request, str(conflict))
        return redirect("donations:mine")
    if wants_json(request):
        return JsonResponse({"withdrawn": str(uuid)})
    messages.success(request, "The picture was withdrawn; nothing of it is kept.")
    return redirect("donations:mine")


@require_POST
@limit("label", "VOTE_RATE")
def donor_labels(request: HttpRequest, uuid) -> HttpResponse:
    """A donor adds labels to one of their own pictures, pending or public (per photo, after
    a donation: the result page's form, or the donate page's script)."""
    image = (
        Image.objects.donated_by(request.voter)
        .filter(uuid=uuid, status__in=[Image.Status.PENDING, Image.Status.PUBLIC])
        .first()
    )
    batch = request.POST.get("batch", "")
    back = reverse("donations:result", args=[batch]) if BATCH_RE.match(batch) else None
    back = back or reverse("donations:mine")
    if image is None:
        raise Http404("No such picture of yours.")
    text = request.POST.get("labels", "")
    try:
        if not is_storable_text(text):
            raise forms.ValidationError("A label cannot contain a NUL character.")
        labels, suggestions = parse_labels(text[:2000])
        if not labels and not suggestions:
            raise forms.ValidationError("Type at least one label.")
    except forms.ValidationError as error:
        if wants_json(request):
            return JsonResponse({"error": " ".join(error.messages)}, status=400)
        messages.error(request, " ".join(error.messages))
        return redirect(back)
    label_by_donor(image, labels, suggestions, request.voter)
    names = [label.full_name for label in labels]
    if BATCH_RE.match(batch) and (stored := request.session.get(f"donations:{batch}")):
        for outcome in stored:
            if outcome.get("uuid") == str(image.uuid):
                outcome["labels"] = list(dict.fromkeys([*outcome.get("labels", []), *names]))
                outcome["suggestions"] = list(
                    dict.fromkeys([*outcome.get("suggestions", []), *suggestions])
                )
        request.session[f"donations:{batch}"] = stored
    if wants_json(request):
        return JsonResponse({"labels": names, "suggestions": suggestions})
    messages.success(request, f"Added to your picture: {', '.join(names + suggestions)}.")
    return redirect(back)


@require_safe
def donation_result(request: HttpRequest, batch: str) -> HttpResponse:
    outcomes = request.session.get(f"donations:{batch}")
    if not BATCH_RE.match(batch) or outcomes is None:
        raise Http404("No such donation in this session.")
    accepted = [o["uuid"] for o in outcomes if o["status"] == "accepted"]
    kept = {str(u) for u in Image.objects.filter(uuid__in=accepted).values_list("uuid", flat=True)}
    withdrawn = {
        "status": "withdrawn",
        "message": "You withdrew this picture; nothing of it is kept.",
    }
    outcomes = [
        {**o, **withdrawn} if o["status"] == "accepted" and o["uuid"] not in kept else o
        for o in outcomes
    ]
    counts = {
        status: sum(1 for o in outcomes if o["status"] == status)
        for status in ("accepted", "duplicate", "rejected", "withdrawn")
    }
    context = {
        "outcomes": outcomes,
        "counts": counts,
        "batch": batch,
        "label_names": Label.objects.typeable_names() if counts["accepted"] else [],
    }
    return render(request, "donations/result.html", context)


@require_safe
def my_donations(request: HttpRequest) -> HttpResponse:
    images = (
        Image.objects.donated_by(request.voter)
        .prefetch_related(
            Prefetch("pairs", queryset=ImageLabel.objects.select_related("label__parent"))
        )
        .order_by("-created")[:500]
        if request.session.get("voter_id") or request.user.is_authenticated
        else Image.objects.none()
    )
    return render(request, "donations/mine.html", {"images": images})


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """A keyset position: `<microseconds since epoch>-<id>` of the last image shown."""
    match = re.fullmatch(r"(\d{1,20})-(\d{1,20})", value or "")
    if not match:
        return None
    try:
        moment = datetime.fromtimestamp(int(match[1]) / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment, int(match[2])


def make_cursor(image: Image) -> str:
    return f"{int(image.created.timestamp() * 1_000_000)}-{image.pk}"


@require_safe
@anonymous_page_cache(params=("label", "state", "after"))
def browse(request: HttpRequest) -> HttpResponse:
    """Newest public images first, with keyset pagination: deep pages cost what the first does."""
    images = Image.objects.public()
    label = None
    if slug := request.GET.get("label", "").strip():
        label = Label.objects.filter(slug=slug).select_related("parent").first()
        if label is None:
            label = Label.objects.resolve(slug)
        if label is None:
            messages.error(request, f"There is no label called “{slug}”; showing all pictures.")
        else:
            images = images.filter(pairs__label=label)
    state = request.GET.get("state", "")
    if label is not None and state in ("validated", "rejected", "open"):
        images = images.filter(pairs__label=label, pairs__status=state)
    cursor = parse_cursor(request.GET.get("after", ""))
    if cursor is not None:
        moment, pk = cursor
        images = images.filter(created__lte=moment).exclude(created=moment, pk__gte=pk)
    page = list(
        images.order_by("-created", "-pk")
        .only("uuid", "width", "height", "format", "status", "publication", "created")
        .prefetch_related(
            Prefetch(
                "pairs",
                queryset=ImageLabel.objects.select_related("label__parent").order_by("label__name"),
            )
        )[: PAGE_SIZE + 1]
    )
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    next_cursor = make_cursor(page[-1]) if has_more else None
    return render(
        request,
        "donations/browse.html",
        {
            "images": page,
            "label": label,
            "state": state,
            "next_cursor": next_cursor,
            "is_first_page": cursor is None,
            "label_datalist": lookup.label_datalist(),
        },
    )


@require_safe
@anonymous_page_cache()
def image_detail(request: HttpRequest, uuid) -> HttpResponse:
    image = get_object_or_404(Image.objects.public(), uuid=uuid)
    pairs = image.pairs.select_related("label__parent").order_by(
        "label__parent__name", "label__name"
    )
    return render(
        request,
        "donations/image.html",
        {
            "image": image,
            "pairs": pairs,
            "report_form": ReportForm(),
            "label_datalist": lookup.label_datalist(),
        },
    )


@require_POST
@limit("report", "REPORT_RATE")
def report_image(request: HttpRequest, uuid) -> HttpResponse:
    image = get_object_or_404(Image.objects.public(), uuid=uuid)
    form = ReportForm(request.POST)
    if not form.is_valid():
        pairs = image.pairs.select_related("label__parent")
        return render(
            request,
            "donations/image.html",
            {
                "image": image,
                "pairs": pairs,
                "report_form": form,
                "label_datalist": lookup.label_datalist(),
            },
            status=400,
        )
    try:
        image.report(
            reporter=request.voter,
            reason=form.cleaned_data["reason"],
            text=form.cleaned_data["text"],
            network=ip_prefix(client_ip(request)),
        )
    except IntegrityError:
        messages.info(
            request, "You have already reported this picture; a moderator will look at it."
        )
        return redirect(image)
    messages.success(request, "Thank you. A moderator will look at this picture.")
    image.refresh_from_db(fields=["status"])
    return redirect(image if image.is_public else "donations:browse")


@staff_member_required
@require_safe
def private_file(request: HttpRequest, uuid, kind: str) -> HttpResponse:
    """A moderator's view of a file that is not public (pending, quarantined, hidden)."""
    if not request.user.has_perm("donations.change_image"):
        raise Http404
    try:
        image = get_object_or_404(Image, uuid=UUID(uuid))
    except ValueError:
        raise Http404 from None
    if image.is_public:
        return redirect(image.url(kind))
    return private_file_response(image, kind)


def private_file_response(image: Image, kind: str) -> HttpResponse:
    """A private rendition, for the few who may see it (moderators, its donor): through
    nginx's internal /_private/ where the store has one, else sent by Django (from the
    bucket, too: a private object has no URL of its own); never cached."""
    name = image.file_name(kind)
    storage = private_storage()
    try:
        accel = storage.accel_redirect(name)
        if accel is not None:
            if not storage.exists(name):
                raise FileNotFoundError(name)
            response = HttpResponse(content_type=image.content_type)
            response["X-Accel-Redirect"] = accel
        else:
            response = FileResponse(storage.open(name), content_type=image.content_type)
    except FileNotFoundError:
        raise Http404("The file is gone (a rejected picture's files are deleted).") from None
    except STORE_ERRORS:
        log.exception("private file %s not read: the media store failed", name)
        response = HttpResponse("The picture cannot be read just now.", status=503)
        response["Retry-After"] = "60"
    response["Cache-Control"] = PRIVATE_FILE_CACHE_CONTROL
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_safe
def public_media(request: HttpRequest, path: str) -> HttpResponse:
    """Approved files, when no web server sits in front (`make run`); nginx serves them in production."""
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT / "public"))
    response["Cache-Control"] = PUBLIC_FILE_CACHE_CONTROL
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response
