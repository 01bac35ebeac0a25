from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from people.pagecache import anonymous_page_cache
from validation import statistics

from .models import Label


@require_safe
@anonymous_page_cache()
def label_list(request: HttpRequest) -> HttpResponse:
    """The whole vocabulary: what each label means, its parts and other names."""
    labels = (
        Label.objects.taggable()
        .top_level()
        .prefetch_related(
            Prefetch("sublabels", queryset=Label.objects.taggable().order_by("name")),
            Prefetch("categories", queryset=Label.objects.order_by("name")),
            "synonyms",
        )
    )
    return render(request, "labels/list.html", {"labels": statistics.with_usage(labels)})
