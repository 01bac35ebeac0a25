"""/v1/label…: the label catalogue, in the original ImageMonkey's shapes."""

import random

from django.db.models import Count, Prefetch
from django.http import HttpRequest, JsonResponse

from people.http import flag, json_error, public_read

from .models import Label


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


@public_read
def accessors(request: HttpRequest) -> JsonResponse:
    """Every string an export query may use: `dog`, and `dog.has='eye'` for parts."""
    names = list(Label.objects.taggable().top_level().values_list("name", flat=True))
    parts = (
        Label.objects.taggable().filter(parent__isnull=False).values_list("parent__name", "name")
    )
    names += [f"{parent}.has='{part}'" for parent, part in parts]
    return JsonResponse(sorted(names), safe=False)


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
