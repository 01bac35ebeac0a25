"""/v1/statistics and /v1/activity: the /statistics page's numbers in the original's shapes.

What the original counted that we do not keep reads as empty or zero: contributions per
country (no address is ever looked up) and per app, annotations and refinements (there
are none here). Activity is counted per day, never listed per vote or voter.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from labels.models import Label, LabelSuggestion
from people.http import public_read
from people.ratelimits import limit

from .statistics import site_statistics

PER_COUNTRY_AND_APP = (
    "donations_per_country",
    "validations_per_country",
    "annotations_per_country",
    "annotation_refinements_per_country",
    "image_descriptions_per_country",
    "donations_per_app",
    "validations_per_app",
    "annotations_per_app",
)


@public_read
@limit("statistics", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def statistics(request: HttpRequest) -> JsonResponse:
    """GET /v1/statistics: the original's explore summary."""
    numbers = site_statistics()
    totals = numbers["totals"]
    return JsonResponse(
        {
            "validations": [
                {
                    "label": row["label"],
                    "count": row["images"],
                    "error_rate": row["error_rate"],
                    "total_validations": row["validated"] + row["rejected"],
                }
                for row in numbers["per_label"]
            ],
            **{name: [] for name in PER_COUNTRY_AND_APP},
            "num_of_unlabeled_donations": totals["unlabeled"],
            "num_of_donations": totals["images"],
            "num_of_validations": totals["votes"],
            "num_of_annotations": 0,
            "num_of_annotation_refinements": 0,
            "num_of_labels": Label.objects.taggable().count(),
            "num_of_label_suggestions": LabelSuggestion.objects.pending().count(),
        }
    )


@public_read
@limit("statistics", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def activity(request: HttpRequest) -> JsonResponse:
    """GET /v1/activity: votes and donations per day over the last month."""
    rows = []
    for day in site_statistics()["activity"]:
        for name, kind, count in (
            ("validation", "verified", day["votes"]),
            ("donation", "created", day["donations"]),
        ):
            if count:
                rows.append({"name": name, "type": kind, "date": day["date"], "count": count})
    return JsonResponse({"activity": rows, "period": "last-month"})
