"""Voting pages: one question at a time, the grid, adding labels, your numbers, statistics."""

from __future__ import annotations

import uuid as uuid_module
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from annotations import agreement
from donations import pairs as pair_rules
from donations.models import Image, ImageLabel
from labels import lookup
from labels.models import Label, normalize_name
from people.http import is_storable_text, wants_json
from people.identity import client_ip, ip_prefix
from people.pagecache import anonymous_page_cache
from people.ratelimits import limit, spend

from . import selection, statistics, tickets
from .models import Vote
from .voting import (
    VoteRefused,
    gold_pool_size,
    last_undoable,
    record_vote,
    undo_last_vote,
    undo_votes,
)

ANSWERS = {"yes": Vote.Answer.YES, "no": Vote.Answer.NO, "skip": Vote.Answer.SKIP}


def label_from_query(request: HttpRequest) -> tuple[Label | None, str]:
    """The ?label= restriction: a slug or a name; an error text when it names nothing."""
    text = request.GET.get("label", "").strip() or request.POST.get("label", "").strip()
    if not text:
        return None, ""
    if not is_storable_text(text):
        return None, "A label name cannot contain a NUL character."
    label = Label.objects.taggable().filter(slug=text).select_related("parent").first()
    label = label or Label.objects.resolve(text)
    if label is None:
        return None, f"There is no label called “{text[:100]}”."
    return label, ""


def validate_url(label: Label | None, **more) -> str:
    url = reverse("validation:validate")
    query = {**({"label": label.slug} if label else {}), **more}
    return f"{url}?{urlencode(query)}" if query else url


def task_context(pair: ImageLabel, voter, network: str) -> dict:
    width, height = pair.image.display_size
    label = pair.label
    return {
        "pair": pair.pk,
        "image": str(pair.image.uuid),
        "image_url": pair.image.display_url,
        "width": width,
        "height": height,
        "label": label.parent.name if label.parent_id else label.name,
        "sublabel": label.name if label.parent_id else "",
        "question": label.question,
        "description": label.description,
        "vote_url": reverse("validation:vote", args=[pair.pk]),
        "ticket": tickets.issue(voter, pair, network),
    }


TUTORIAL_COOKIE = "im_tutorial"


def pair_param(request: HttpRequest, name: str) -> tuple[int | None, str]:
    """A pair id in the query string (?answered=, ?again=), or the reason it is not one."""
    text = request.GET.get(name, "")
    if not text:
        return None, ""
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        return None, f"“{name}” must be a picture's number."
    return int(text), ""


@require_safe
def validate(request: HttpRequest) -> HttpResponse:
    label, error = label_from_query(request)
    if error:
        messages.error(request, error)
    answered_id, bad_answered = pair_param(request, "answered")
    again_id, bad_again = pair_param(request, "again")
    if bad_answered or bad_again:
        return render(request, "400.html", {"message": bad_answered or bad_again}, status=400)
    voter = request.voter
    pair = selection.undone_for(voter, again_id) if again_id else None
    pair = pair or selection.next_task(voter, label)
    answered = answered_context(voter, answered_id) if answered_id else None
    if pair is None:
        return render(
            request,
            "validation/done.html",
            {
                "label": label,
                "suggestions": selection.labels_with_open_tasks(8),
                "no_pictures": not Image.objects.public().exists(),
                "answered": answered,
            },
        )
    tutorial = request.COOKIES.get(TUTORIAL_COOKIE) != "done"
    return render(
        request,
        "validation/validate.html",
        {
            "task": task_context(pair, voter, ip_prefix(client_ip(request))),
            "pair": pair,
            "label_filter": label,
            "training": training_note(voter),
            "answered": answered,
            "tutorial": tutorial,
            "examples": selection.examples_of(pair.label, pair.image_id) if tutorial else None,
            "tutorial_label": pair.label,
        },
    )


def answered_context(voter, pair_id: int) -> dict | None:
    """What the page says about the answer just given: the crowd's line, and an Undo while
    it may be undone. Nothing for a pair this voter has not answered."""
    if not voter.exists:
        return None
    vote = Vote.objects.filter(voter=voter, pair_id=pair_id, undone=False).first()
    if vote is None:
        return None
    pair = ImageLabel.objects.get(pk=pair_id)
    last = last_undoable(voter)
    return answered_json(pair, undoable=last is not None and last.pair_id == pair_id)


def answered_json(pair: ImageLabel, undoable: bool = True) -> dict:
    return {
        "pair": pair.pk,
        "feedback": statistics.crowd_feedback(pair),
        "undo_url": reverse("validation:undo") if undoable else "",
        "undo_seconds": settings.UNDO_SECONDS,
    }


def training_note(voter) -> str:
    """What a voter in training should know: their answers do not count yet, and why."""
    if not selection.in_training(voter):
        return ""
    if gold_pool_size() == 0:
        return (
            "Your answers are saved, but nobody's count yet: this site is new, and answers "
            "start to count once moderators have marked pictures whose answer is known and "
            "you have answered some of them well."
        )
    return (
        f"Your first answers are practice: they start to count once you have answered "
        f"{settings.TRAINING_GOLD_REQUIRED} pictures whose answer we know, with at most one "
        "wrong in four. See where you stand on “My numbers”."
    )


@require_POST
@limit("vote", "VOTE_RATE")
def vote(request: HttpRequest, pair_id: int) -> HttpResponse:
    answer = ANSWERS.get(request.POST.get("answer", ""))
    label, _ = label_from_query(request)
    if answer is None:
        return vote_error(request, "Please answer yes, no or skip.", 400, label)
    pair = get_object_or_404(ImageLabel, pk=pair_id)
    try:
        result = record_vote(
            pair,
            request.voter,
            answer,
            ip_prefix(client_ip(request)),
            ticket=request.POST.get("ticket"),
        )
    except VoteRefused as refused:
        return vote_error(request, refused.message, refused.status, label)
    if wants_json(request):
        return JsonResponse(
            {**next_tasks_json(request, label), "answered": answered_json(result.pair)}
        )
    return redirect(validate_url(label, answered=pair.pk))


@require_POST
@limit("vote", "VOTE_RATE")
def undo(request: HttpRequest) -> HttpResponse:
    """Take the last answer back (within a minute) and ask that question again."""
    label, _ = label_from_query(request)
    text = request.POST.get("pair", "")
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        return vote_error(request, "Say which answer to undo.", 400, label)
    try:
        pair = undo_last_vote(request.voter, int(text))
    except VoteRefused as refused:
        return vote_error(request, refused.message, refused.status, label)
    again = selection.undone_for(request.voter, pair.pk)
    if wants_json(request):
        network = ip_prefix(client_ip(request))
        task = task_context(again, request.voter, network) if again else None
        return JsonResponse({"undone": True, "next": task, "done_url": validate_url(label)})
    messages.info(request, "Your answer was taken back. Answer this picture again, or move on.")
    return redirect(validate_url(label, again=pair.pk))


@require_POST
def tutorial_seen(request: HttpRequest) -> HttpResponse:
    """Put the first-visit explanation away, for this browser (a cookie: nothing stored)."""
    label, _ = label_from_query(request)
    response = JsonResponse({"ok": True}) if wants_json(request) else redirect(validate_url(label))
    response.set_cookie(
        TUTORIAL_COOKIE,
        "done",
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


def next_tasks_json(request: HttpRequest, label: Label | None) -> dict:
    """The next task and the one after it, whose image the page preloads.

    The page sends back the pair it preloaded as `prefer`; it is served next
    when this voter may still answer it.
    """
    voter = request.voter
    network = ip_prefix(client_ip(request))
    following = None
    prefer = request.POST.get("prefer", "")
    if prefer.isascii() and prefer.isdigit() and _was_served(request, voter, int(prefer)):
        following = selection.still_open_for(voter, int(prefer))
    following = following or selection.next_task(voter, label)
    if following is None:
        return {"recorded": True, "next": None, "done_url": validate_url(label)}
    after = selection.next_task(voter, label, exclude={following.pk})
    return {
        "recorded": True,
        "next": task_context(following, voter, network),
        "then": task_context(after, voter, network) if after else None,
    }


def _was_served(request: HttpRequest, voter, pair_id: int) -> bool:
    """Whether the preloaded pair comes with the ticket it was served with."""
    try:
        network = ip_prefix(client_ip(request))
        tickets.verify(request.POST.get("prefer_ticket"), voter, pair_id, network)
    except tickets.TicketRefused:
        return False
    return True


def vote_error(
    request: HttpRequest, message: str, status: int, label: Label | None
) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"error": message}, status=status)
    messages.error(request, message)
    if status == 404:
        raise Http404(message)
    return redirect(validate_url(label))


@require_http_methods(["GET", "POST"])
@limit("vote", "VOTE_RATE")
def grid(request: HttpRequest) -> HttpResponse:
    label, error = label_from_query(request)
    if label is None:
        choices = selection.labels_with_open_tasks()
        return render(
            request,
            "validation/grid_pick.html",
            {"error": error, "labels": choices},
            status=400 if error else 200,
        )
    if request.method == "POST":
        return grid_post(request, label)
    answered, again = pair_list(request, "answered"), pair_list(request, "again")
    if answered is None or again is None:
        return render(
            request, "400.html", {"message": "A list of pictures must be numbers."}, status=400
        )
    voter = request.voter
    pairs = selection.undone_among(voter, again, label) if again else []
    pairs = pairs or selection.grid_tasks(voter, label)
    undoable = grid_undoable(voter, answered) if answered else []
    if not pairs:
        return render(
            request,
            "validation/done.html",
            {"label": label, "grid": True, "grid_undo": undoable},
        )
    return render(
        request,
        "validation/grid.html",
        {
            "label": label,
            "tasks": [
                (pair, tickets.issue(voter, pair, ip_prefix(client_ip(request)))) for pair in pairs
            ],
            "question": label.question,
            "grid_undo": undoable,
        },
    )


def pair_list(request: HttpRequest, name: str) -> list[int] | None:
    """A comma-separated list of pair ids in the query string (at most 50); None if bad."""
    text = request.GET.get(name, "")
    if not text:
        return []
    pieces = text.split(",")[:50]
    if not all(p.isascii() and p.isdigit() and len(p) < 19 for p in pieces):
        return None
    return [int(p) for p in pieces]


def grid_undoable(voter, pair_ids: list[int]) -> list[int]:
    """Which of a grid's answers this voter may still take back (a read)."""
    if not voter.exists:
        return []
    since = timezone.now() - timedelta(seconds=settings.UNDO_SECONDS)
    return list(
        Vote.objects.filter(
            voter=voter, pair_id__in=pair_ids, undone=False, updated__gte=since
        ).values_list("pair_id", flat=True)
    )


@require_POST
@limit("vote", "VOTE_RATE")
def grid_undo(request: HttpRequest) -> HttpResponse:
    """Take back a grid's answers (within a minute) and show those pictures again."""
    label, error = label_from_query(request)
    if label is None:
        messages.error(request, error or "Say which label's grid to undo.")
        return redirect(reverse("validation:grid"))
    back = reverse("validation:grid") + "?" + urlencode({"label": label.slug})
    try:
        pair_ids = [int(pk) for pk in request.POST.getlist("pair")[:50]]
        undone = undo_votes(request.voter, pair_ids)
    except ValueError:
        messages.error(request, "The undo form was damaged; nothing was taken back.")
        return redirect(back)
    except VoteRefused as refused:
        messages.error(request, refused.message)
        return redirect(back)
    messages.info(request, f"{len(undone)} answers taken back: here are those pictures again.")
    return redirect(back + "&" + urlencode({"again": ",".join(str(p.pk) for p in undone)}))


UNMARKED = {"no": Vote.Answer.NO, "skip": Vote.Answer.SKIP}


def grid_post(request: HttpRequest, label: Label) -> HttpResponse:
    """All twelve answers at once: marked ones are Yes, the rest No, in one transaction."""
    try:
        shown = [int(pk) for pk in request.POST.getlist("shown")][:50]
        marked = {int(pk) for pk in request.POST.getlist("yes")}
    except ValueError:
        messages.error(request, "The grid form was damaged; here is a fresh one.")
        return redirect(reverse("validation:grid") + "?" + urlencode({"label": label.slug}))
    unmarked = UNMARKED.get(request.POST.get("unmarked", ""))
    if unmarked is None:
        messages.error(request, "Say what the pictures you did not mark are: no, or skipped.")
        return redirect(reverse("validation:grid") + "?" + urlencode({"label": label.slug}))
    if not shown:
        messages.error(request, "There was nothing to answer.")
        return redirect(reverse("validation:grid") + "?" + urlencode({"label": label.slug}))
    if refused := spend(request, "vote", "VOTE_RATE", len(shown) - 1):  # each answer counts
        return refused
    pairs = {p.pk: p for p in ImageLabel.objects.filter(pk__in=shown, label=label)}
    prefix = ip_prefix(client_ip(request))
    try:
        with transaction.atomic():
            for pk in sorted(shown):  # one lock order for every batch: no deadlock
                if pk not in pairs:
                    raise VoteRefused("One of the pictures is no longer part of this label.", 404)
                answer = Vote.Answer.YES if pk in marked else unmarked
                ticket = request.POST.get(f"ticket-{pk}")
                record_vote(pairs[pk], request.voter, answer, prefix, ticket=ticket)
    except VoteRefused as refused:
        messages.error(request, f"Nothing was recorded: {refused.message}")
        return redirect(reverse("validation:grid") + "?" + urlencode({"label": label.slug}))
    messages.success(request, f"Thank you! {len(shown)} answers recorded.")
    answered = ",".join(str(pk) for pk in sorted(shown))
    return redirect(
        reverse("validation:grid") + "?" + urlencode({"label": label.slug, "answered": answered})
    )


@require_POST
@limit("label", "VOTE_RATE")
def add_label(request: HttpRequest, uuid) -> HttpResponse:
    """Anyone adds a label to a public picture: a new pair with no votes, or a suggestion."""
    image = get_object_or_404(Image.objects.public(), uuid=uuid)
    text = normalize_name(request.POST.get("label", ""))[:100]
    next_url = request.POST.get("next", "")
    if next_url == reverse("validation:label-mode"):  # stay on this picture until moving on
        back = f"{next_url}?{urlencode({'image': image.uuid})}"
    else:
        back = image.get_absolute_url()
    if not text:
        messages.error(request, "Type a label to add.")
        return redirect(back)
    label, created = pair_rules.add_label(image, text, added_by=request.voter)
    if label is None:
        messages.info(
            request,
            f"“{text}” is not one of our labels yet; we sent it to our curators as a suggestion.",
        )
        return redirect(back)
    if created:
        messages.success(
            request, f"Added “{label.full_name}”. Other people will now be asked about it."
        )
    else:
        messages.info(request, f"This picture already has the label “{label.full_name}”.")
    return redirect(back)


@require_safe
def label_mode(request: HttpRequest) -> HttpResponse:
    """Walk through public pictures that have few labels, adding what is missing.

    `?image=<uuid>` stays on a picture (after adding a label to it); without it, the
    next picture that needs labels."""
    image = None
    if wanted := request.GET.get("image"):
        try:
            image = Image.objects.public().filter(uuid=uuid_module.UUID(wanted)).first()
        except ValueError:
            image = None
    image = image or selection.image_needing_labels(request.voter)
    if image is None:
        return render(request, "validation/done.html", {"label_mode": True})
    pairs = image.pairs.select_related("label__parent").order_by("label__name")
    return render(
        request,
        "validation/label_mode.html",
        {"image": image, "pairs": pairs, "label_datalist": lookup.label_datalist()},
    )


@require_safe
def me(request: HttpRequest) -> HttpResponse:
    numbers = statistics.voter_numbers(request.voter)
    rules = {
        "required": settings.TRAINING_GOLD_REQUIRED,
        "accuracy": round(settings.TRAINING_MIN_ACCURACY * 100),
        "gold_every": settings.GOLD_EVERY,
    }
    no_gold = not numbers["trusted"] and gold_pool_size() == 0
    return render(
        request, "validation/me.html", {"numbers": numbers, "rules": rules, "no_gold": no_gold}
    )


@require_safe
@anonymous_page_cache()
def statistics_page(request: HttpRequest) -> HttpResponse:
    numbers = statistics.site_statistics()
    return render(
        request,
        "validation/statistics.html",
        {
            **numbers,
            "outline_agreement": agreement.by_label(),
            "agreement_iou": settings.AGREEMENT_IOU,
        },
    )
