"""/v1/label…: the label catalogue, in the original ImageMonkey's shapes."""

import random

from django.db.models import Count, Prefetch
from django.http import HttpRequest, JsonResponse

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
from people.ratelimits import limit

from .models import Label, LabelSuggestion, normalize_name


@public_read
def labels(request: HttpRequest) -> JsonResponse:
    """Active label names, or with ?detailed=true a map of everything about each."""
    top = Label.objects.taggable().top_level()
    try:
        detailed = flag(request, "detailed")
    except ValueError as error:
        return json_error(str(error), 400)
    if not detailed:
        return JsonResponse(list(top.values_list("name", flat=True)), safe=False)
    top = top.prefetch_related(
        Prefetch("sublabels", queryset=Label.objects.taggable().order_by("name")),
        Prefetch("categories", queryset=Label.objects.order_by("name")),
        "synonyms",
    )
    details = {}
    for label in top:
        parts = list(label.sublabels.all())
        categories = [c.name for c in label.categories.all()]
        details[label.name] = {
            "description": label.description,
            "plural": label.plural,
            "categories": categories,
            "isa": categories,
            "sublabels": [part.name for part in parts],
            "has": {part.name: {"description": part.description} for part in parts},
            "synonyms": [s.name for s in label.synonyms.all()],
            "accessors": ["."],
        }
    return JsonResponse(details)


def accessor_pairs() -> list[tuple[str, str]]:
    """(accessor, parent accessor) of every taggable label: ("dog", ""), ("dog.has='eye'", "dog")."""
    labels = Label.objects.taggable().select_related("parent")
    return sorted(
        (label.accessor, label.parent.accessor if label.parent_id else "") for label in labels
    )


# The original's label types; ours are all "normal" (no refinements).
LABEL_TYPES = ("normal", "refinement", "refinement_category")


@public_read
def accessors(request: HttpRequest) -> JsonResponse:
    """Every string an export query may use: `dog`, and `dog.has='eye'` for parts;
    ?detailed=true: [{"accessor", "parent_accessor"}] (the original's shape)."""
    try:
        detailed = flag(request, "detailed")
    except ValueError as error:
        return json_error(str(error), 400)
    label_type = request.GET.get("label_type", "")
    if label_type and label_type not in LABEL_TYPES:
        return json_error(f"label_type is one of {', '.join(LABEL_TYPES)}", 422)
    rows = accessor_pairs() if label_type in ("", "normal") else []
    if not detailed:
        return JsonResponse([accessor for accessor, _ in rows], safe=False)
    return JsonResponse(
        [{"accessor": accessor, "parent_accessor": parent} for accessor, parent in rows],
        safe=False,
    )


@public_read
def plurals(request: HttpRequest) -> JsonResponse:
    """{label: plural} for every taggable top-level label that has a plural."""
    rows = Label.objects.taggable().top_level().exclude(plural="").order_by("name")
    return JsonResponse(dict(rows.values_list("name", "plural")))


SUGGESTIONS_MAX = 1000


@public_read
def suggestions(request: HttpRequest) -> JsonResponse:
    """The most requested label suggestions' names: waiting ones, and accepted ones unless
    ?include_unlocked=false. Rejected ones never (curators turned them down)."""
    try:
        include_accepted = "include_unlocked" not in request.GET or flag(
            request, "include_unlocked"
        )
    except ValueError as error:
        return json_error(str(error), 400)
    statuses = [LabelSuggestion.Status.PENDING]
    if include_accepted:
        statuses.append(LabelSuggestion.Status.ACCEPTED)
    names = (
        LabelSuggestion.objects.filter(status__in=statuses)
        .order_by("-times_requested", "name")
        .values_list("name", flat=True)[:SUGGESTIONS_MAX]
    )
    return JsonResponse(list(names), safe=False)


@api_write
@allow("POST")
@limit("suggest", "REPORT_RATE", by_address_only=True)
def suggest(request: HttpRequest) -> JsonResponse:
    """POST /v1/label/suggest {"label": "..."}: ask curators for a label the taxonomy lacks."""
    try:
        body = read_json(request)
    except BadBody as error:
        return json_error(str(error), error.status)
    text = body.get("label")
    if not isinstance(text, str) or not is_storable_text(text) or not normalize_name(text):
        return json_error('give the label, e.g. {"label": "wombat"}', 400)
    if len(normalize_name(text)) > 100:
        return json_error("a label name has at most 100 characters", 400)
    if (label := Label.objects.resolve(text)) is not None:
        return JsonResponse({"label": label.full_name, "exists": True})
    suggestion = LabelSuggestion.objects.record(text)
    return JsonResponse({"label": suggestion.name, "exists": False})


@public_read
def random_label(request: HttpRequest) -> JsonResponse:
    # The taxonomy holds hundreds of rows, not millions: picking from the ids is cheap.
    ids = list(Label.objects.taggable().top_level().values_list("pk", flat=True))
    if not ids:
        return json_error("there are no labels yet", 404)
    return JsonResponse({"label": Label.objects.get(pk=random.choice(ids)).name})


@public_read
def popular(request: HttpRequest) -> JsonResponse:
    """The ten labels with the most image–label pairs."""
    top = (
        Label.objects.taggable()
        .top_level()
        .annotate(n=Count("pairs"))
        .filter(n__gt=0)
        .order_by("-n", "name")[:10]
    )
    return JsonResponse([label.name for label in top], safe=False)
