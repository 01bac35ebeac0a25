"""Pages for outlines: drawing them (/annotate) and checking them (/validate/annotations).

The editor is a script over the picture (static/js/annotate.js); it saves through the
endpoints here, which act for the visitor's own voter (their session, with the CSRF
token), and write only through annotations.drawing. The /v1/ API (annotations.api)
takes the same shapes for API clients, who identify by token.
"""

from __future__ import annotations

import uuid as uuid_module

from django.contrib import messages
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from donations.models import Image, ImageLabel
from labels.models import Label
from people.http import BadBody, is_storable_text, read_json
from people.identity import client_ip, ip_prefix
from people.ratelimits import limit, spend
from validation import selection as pair_selection

from . import drawing, selection, tasks, voting
from .models import Annotation, AnnotationRevision

GRID_SIZE = 12


def label_from_query(request: HttpRequest) -> tuple[Label | None, str]:
    """The ?label= restriction: a slug or a name of a label people outline; an error text
    when it names none."""
    text = request.GET.get("label", "").strip() or request.POST.get("label", "").strip()
    if not text:
        return None, ""
    if not is_storable_text(text):
        return None, "A label name cannot contain a NUL character."
    label = Label.objects.annotatable().filter(slug=text).select_related("parent").first()
    label = label or Label.objects.resolve(text)
    if label is None:
        return None, f"There is no label called “{text[:100]}”."
    if not label.is_annotatable:
        return None, f"“{label.full_name}” is not outlined: it is a whole scene or a category."
    return label, ""


def with_label(url: str, label: Label | None, **more) -> str:
    query = {"label": label.slug} if label else {}
    query.update({k: v for k, v in more.items() if v})
    return f"{url}?{urlencode(query)}" if query else url


def thing(label: Label) -> str:
    """What an outline holds, in words: “dog”, or “eye of the dog” for a part."""
    return f"{label.name} of the {label.parent.name}" if label.parent_id else label.name


def network(request: HttpRequest) -> str:
    return ip_prefix(client_ip(request))


# --- drawing -------------------------------------------------------------------------


@require_safe
def annotate(request: HttpRequest) -> HttpResponse:
    """The editor with the next pair to outline, or with one's own outline to edit
    (`?annotation=<uuid>`; `&rev=` starts from an earlier revision)."""
    label, error = label_from_query(request)
    if error:
        messages.error(request, error)
    if request.GET.get("annotation"):
        return edit(request, label)
    pair = next_pair(request.voter, label, request.GET.get("skip", ""))
    if pair is None:
        return render(request, "annotations/annotate_done.html", {"label": label})
    editor = {
        "save": {"url": reverse("annotations:draw", args=[pair.pk]), "method": "POST"},
        "ticket": drawing.draw_ticket(request.voter, pair, network(request)),
        "not_annotatable_url": reverse("annotations:not-annotatable", args=[pair.pk]),
        "shapes": [],
    }
    skip_url = with_label(reverse("annotations:annotate"), label, skip=pair.pk)
    return editor_page(request, pair, label, editor, skip_url)


def next_pair(voter, label: Label | None, skipped: str) -> ImageLabel | None:
    """The next pair to outline; after a Skip, another one than the skipped pair."""
    exclude = (
        {int(skipped)} if skipped.isascii() and skipped.isdigit() and len(skipped) < 12 else set()
    )
    return selection.pair_to_outline(voter, label, exclude=exclude)


def edit(request: HttpRequest, label: Label | None) -> HttpResponse:
    try:
        wanted = uuid_module.UUID(request.GET["annotation"])
    except ValueError:
        raise Http404("There is no such outline.") from None
    annotation = get_object_or_404(
        Annotation.objects.public().select_related("pair__image", "pair__label__parent"),
        uuid=wanted,
    )
    if not drawing.may_edit(annotation, request.voter):
        return render(
            request,
            "annotations/not_yours.html",
            {"annotation": annotation, "label": annotation.pair.label},
            status=403,
        )
    number = request.GET.get("rev", "")
    wanted_number = number.isascii() and number.isdigit() and len(number) < 10
    number = int(number) if wanted_number else annotation.revision
    revision = get_object_or_404(AnnotationRevision, annotation=annotation, number=number)
    editor = {
        "save": {"url": reverse("annotations:revise", args=[annotation.uuid]), "method": "PUT"},
        "ticket": "",
        "not_annotatable_url": "",
        "shapes": revision.shapes,
    }
    back = with_label(reverse("annotations:annotate"), label)
    return editor_page(request, annotation.pair, label, editor, back, annotation=annotation)


def editor_page(
    request, pair: ImageLabel, label_filter, editor: dict, skip_url: str, annotation=None
):
    image, label = pair.image, pair.label
    others = [
        {"label": other.pair.label.full_name, "shapes": shapes}
        for other, shapes in accepted_outlines_beside(pair)
    ]
    editor.update(
        {
            "width": image.width,
            "height": image.height,
            "next_url": with_label(reverse("annotations:annotate"), label_filter),
            "others": others,
        }
    )
    if annotation is not None:
        prompt = f"Edit your outline of the {thing(label)}"
    elif label.parent_id:
        prompt = f"Outline the {label.name} of the {label.parent.name}"
    else:
        prompt = f"Outline every {label.name}"
    return render(
        request,
        "annotations/annotate.html",
        {
            "prompt": prompt,
            "instructions": (
                f"Draw one shape around each {thing(label)} you see, as tightly as you can: "
                "a rectangle, an ellipse or, for odd shapes, a polygon. Zoom in for small ones."
            ),
            "image": image,
            "label": label,
            "pair": pair,
            "annotation": annotation,
            "others": others,
            "editor_data": editor,
            "skip_url": skip_url,
            "check_outlines_url": reverse("annotations:check"),
            "last_outline": last_outline(request.voter, annotation),
        },
    )


def last_outline(voter, editing: Annotation | None) -> Annotation | None:
    """The visitor's latest outline (to reach it again and edit it), unless it is the one
    being edited."""
    if not voter.exists:
        return None
    latest = (
        Annotation.objects.public()
        .filter(author=voter)
        .select_related("pair__label__parent")
        .order_by("-created")
        .first()
    )
    return None if latest is None or latest == editing else latest


def accepted_outlines_beside(pair: ImageLabel) -> list[tuple[Annotation, list[dict]]]:
    """The accepted outlines of the picture's other labels, with their latest shapes."""
    outlines = list(
        Annotation.objects.accepted()
        .filter(pair__image_id=pair.image_id)
        .exclude(pair_id=pair.pk)
        .select_related("pair__label__parent")[:50]
    )
    shapes = latest_shapes(outlines)
    return [(outline, shapes[outline.pk]) for outline in outlines]


def latest_shapes(outlines: list[Annotation]) -> dict[int, list[dict]]:
    """The shapes of each outline's latest revision, in one query."""
    revisions = AnnotationRevision.objects.filter(
        annotation__in=outlines, number=F("annotation__revision")
    ).values_list("annotation_id", "shapes")
    return dict(revisions)


def saved(request: HttpRequest, drawn: drawing.Drawn, status: int) -> JsonResponse:
    label = drawn.annotation.pair.label
    if drawn.revision.number == 1:
        thanks = f"Thank you! Your outline of the {thing(label)} is saved"
    else:
        thanks = f"Thank you! Revision {drawn.revision.number} of your outline is saved"
    messages.success(request, f"{thanks}; other people will now check it.")
    location = reverse("annotations:edit-link", args=[drawn.annotation.uuid])
    response = JsonResponse(
        {
            "annotation": str(drawn.annotation.uuid),
            "revision": drawn.revision.number,
            "next": reverse("annotations:annotate"),
        },
        status=status,
    )
    response["Location"] = location
    return response


def shapes_from_body(request: HttpRequest) -> tuple[object, str]:
    body = read_json(request)
    return body.get("annotations"), body.get("ticket")


@require_POST
@limit("annotate", "ANNOTATION_RATE")
def draw(request: HttpRequest, pair_id: int) -> JsonResponse:
    """The editor's Save for a new outline: {"annotations": [shapes], "ticket"}."""
    pair = get_object_or_404(
        ImageLabel.objects.select_related("image", "label__parent"), pk=pair_id
    )
    try:
        raw, ticket = shapes_from_body(request)
        drawn = drawing.draw(pair, request.voter, raw, network(request), ticket=ticket)
    except BadBody as bad:
        return JsonResponse({"error": str(bad)}, status=bad.status)
    except drawing.DrawingRefused as refused:
        return JsonResponse({"error": refused.message}, status=refused.status)
    return saved(request, drawn, 201)


@require_http_methods(["PUT"])
@limit("annotate", "ANNOTATION_RATE")
def revise(request: HttpRequest, uuid) -> JsonResponse:
    """The editor's Save for one's own outline: a new revision."""
    annotation = get_object_or_404(
        Annotation.objects.select_related("pair__image", "pair__label__parent"), uuid=uuid
    )
    try:
        raw, _ = shapes_from_body(request)
        drawn = drawing.revise(annotation, request.voter, raw)
    except BadBody as bad:
        return JsonResponse({"error": str(bad)}, status=bad.status)
    except drawing.DrawingRefused as refused:
        return JsonResponse({"error": refused.message}, status=refused.status)
    return saved(request, drawn, 200)


@require_safe
def edit_link(request: HttpRequest, uuid) -> HttpResponse:
    """Where a saved outline lives for its author: the editor, open on it."""
    return redirect(reverse("annotations:annotate") + "?" + urlencode({"annotation": uuid}))


@require_POST
@limit("annotate", "ANNOTATION_RATE")
def not_annotatable(request: HttpRequest, pair_id: int) -> JsonResponse:
    """The editor's Not annotatable: {"ticket"} of the task it was served."""
    pair = selection.pair_for_outlining(request.voter, pair_id)
    if pair is None:
        return JsonResponse({"error": "There is no such picture to outline."}, status=404)
    try:
        ticket = read_json(request).get("ticket")
    except BadBody as bad:
        return JsonResponse({"error": str(bad)}, status=bad.status)
    tasks.say_not_annotatable(pair, request.voter, network(request), ticket)
    messages.info(request, f"Noted: the {thing(pair.label)} cannot be outlined in that picture.")
    return JsonResponse({"next": reverse("annotations:annotate")})


# --- checking -------------------------------------------------------------------------


def check_question(label: Label, shapes: int) -> str:
    if shapes == 1:
        return f"Is this outline exactly one {thing(label)}, drawn tightly?"
    return f"Is each of these {shapes} outlines exactly one {thing(label)}, drawn tightly?"


@require_safe
def check(request: HttpRequest) -> HttpResponse:
    label, error = label_from_query(request)
    if error:
        messages.error(request, error)
    annotation = selection.outline_to_check(request.voter, label)
    if annotation is None:
        return render(request, "annotations/check_done.html", {"label": label})
    shapes = latest_shapes([annotation])[annotation.pk]
    pair = annotation.pair
    return render(
        request,
        "annotations/check.html",
        {
            "annotation": annotation,
            "shapes": shapes,
            "image": pair.image,
            "display": pair.image.display_size,
            "label": pair.label,
            "label_filter": label,
            "question": check_question(pair.label, len(shapes)),
            "hint": (
                f"Yes when each shape surrounds one whole {thing(pair.label)}, closely, and "
                f"nothing else; no when a shape holds something else, several of them, or "
                f"cuts off part of the {pair.label.name}."
            ),
            "ticket": voting.check_ticket(request.voter, annotation, network(request)),
            "training": training_note(request.voter),
            "grid_url": with_label(reverse("annotations:check-grid"), label or pair.label),
        },
    )


def training_note(voter) -> str:
    if not pair_selection.in_training(voter):
        return ""
    return (
        "Your first answers are practice: they start to count once you have answered a few "
        "pictures or outlines whose answer we know, with at most one wrong in four."
    )


ANSWERS = {"yes": voting.Answer.YES, "no": voting.Answer.NO, "skip": voting.Answer.SKIP}


@require_POST
@limit("vote", "VOTE_RATE")
def check_vote(request: HttpRequest, uuid) -> HttpResponse:
    label, _ = label_from_query(request)
    back = with_label(reverse("annotations:check"), label)
    answer = ANSWERS.get(request.POST.get("answer", ""))
    if answer is None:
        messages.error(request, "Please answer yes, no or skip.")
        return redirect(back)
    try:
        voting.record_vote(
            uuid, request.voter, answer, network(request), ticket=request.POST.get("ticket")
        )
    except voting.VoteRefused as refused:
        messages.error(request, refused.message)
        if refused.status == 404:
            raise Http404(refused.message) from None
    return redirect(back)


@require_http_methods(["GET", "POST"])
@limit("vote", "VOTE_RATE")
def check_grid(request: HttpRequest) -> HttpResponse:
    label, error = label_from_query(request)
    if label is None:
        return render(
            request,
            "annotations/check_grid_pick.html",
            {"error": error, "labels": labels_with_outlines_to_check()},
            status=400 if error else 200,
        )
    if request.method == "POST":
        return check_grid_post(request, label)
    outlines = selection.outlines_to_check(request.voter, GRID_SIZE, label)
    if not outlines:
        return render(request, "annotations/check_done.html", {"label": label, "grid": True})
    here = with_label(reverse("annotations:check-grid"), label)
    return render(
        request,
        "annotations/check_grid.html",
        {
            "label": label,
            "tasks": [
                {
                    "annotation": annotation,
                    "shapes": shapes,
                    "ticket": voting.check_ticket(request.voter, annotation, network(request)),
                }
                for annotation, shapes in with_latest_shapes(outlines)
            ],
            "post_url": here,
            "single_url": with_label(reverse("annotations:check"), label),
        },
    )


def with_latest_shapes(outlines: list[Annotation]) -> list[tuple[Annotation, list[dict]]]:
    shapes = latest_shapes(outlines)
    return [(outline, shapes[outline.pk]) for outline in outlines]


def labels_with_outlines_to_check() -> list[dict]:
    """Labels with open outlines on public pictures, most first: {slug, full_name, open}
    (counted once a minute: the picker is a page anyone may reload)."""

    def count() -> list[dict]:
        labels = (
            Label.objects.annotatable()
            .filter(
                pairs__annotations__status=Annotation.Status.OPEN,
                pairs__image__status=Image.Status.PUBLIC,
            )
            .annotate(open=Count("pairs__annotations"))
            .select_related("parent")
            .order_by("-open", "name")[:50]
        )
        return [{"slug": x.slug, "full_name": x.full_name, "open": x.open} for x in labels]

    return cache.get_or_set("annotations:labels-to-check", count, 60)


UNMARKED = {"no": voting.Answer.NO, "skip": voting.Answer.SKIP}


def check_grid_post(request: HttpRequest, label: Label) -> HttpResponse:
    """All the grid's answers at once: marked outlines are Yes, the rest as chosen, in one
    transaction (one refused answer records none)."""
    here = with_label(reverse("annotations:check-grid"), label)
    try:
        shown = [uuid_module.UUID(text) for text in request.POST.getlist("shown")][:GRID_SIZE]
        marked = {uuid_module.UUID(text) for text in request.POST.getlist("yes")}
    except ValueError:
        messages.error(request, "The grid form was damaged; here is a fresh one.")
        return redirect(here)
    unmarked = UNMARKED.get(request.POST.get("unmarked", ""))
    if unmarked is None:
        messages.error(request, "Say what the outlines you did not mark are: no, or skipped.")
        return redirect(here)
    if not shown:
        messages.error(request, "There was nothing to answer.")
        return redirect(here)
    if refused := spend(request, "vote", "VOTE_RATE", len(shown) - 1):  # each answer counts
        return refused
    ids = dict(
        Annotation.objects.filter(uuid__in=shown, pair__label=label).values_list("uuid", "pk")
    )
    try:
        with transaction.atomic():
            for key in sorted(shown, key=lambda u: ids.get(u, 0)):  # one lock order: no deadlock
                if key not in ids:
                    raise voting.VoteRefused("One of the outlines is no longer there.", 404)
                voting.record_vote(
                    key,
                    request.voter,
                    voting.Answer.YES if key in marked else unmarked,
                    network(request),
                    ticket=request.POST.get(f"ticket-{key}"),
                )
    except voting.VoteRefused as refused:
        messages.error(request, f"Nothing was recorded: {refused.message}")
        return redirect(here)
    messages.success(request, f"Thank you! {len(shown)} answers recorded.")
    return redirect(here)
