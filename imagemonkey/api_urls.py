"""The /v1/ API, in the original ImageMonkey's shapes (see /api for the documentation)."""

from django.urls import include, path

from annotations import api as annotations_api
from donations import api as donations_api
from validation import api as validation_api

from . import openapi

urlpatterns = [
    path("", include("labels.api_urls")),
    path("openapi.json", openapi.description, name="api-openapi"),
    path("voter", validation_api.voter, name="api-voter"),
    path("me", validation_api.me, name="api-me"),
    path("validate", validation_api.next_validation, name="api-validate"),
    path("donation/validate", validation_api.vote_many, name="api-vote-many"),
    path(
        "donation/<uuid:uuid>/validate/yes",
        validation_api.vote,
        {"answer": "yes"},
        name="api-vote-yes",
    ),
    path(
        "donation/<uuid:uuid>/validate/no",
        validation_api.vote,
        {"answer": "no"},
        name="api-vote-no",
    ),
    path("donation/<uuid:uuid>/annotate", annotations_api.annotate, name="api-annotate"),
    path("annotate", annotations_api.next_outline, name="api-next-outline"),
    path("annotation", annotations_api.annotation, name="api-annotation"),
    path("annotations", annotations_api.browse, name="api-annotations"),
    path("annotation/<uuid:uuid>", annotations_api.edit, name="api-annotation-edit"),
    path(
        "annotation/<uuid:uuid>/validate/yes",
        annotations_api.check,
        {"answer": "yes"},
        name="api-annotation-yes",
    ),
    path(
        "annotation/<uuid:uuid>/validate/no",
        annotations_api.check,
        {"answer": "no"},
        name="api-annotation-no",
    ),
    path(
        "validation/<int:pair_id>/not-annotatable",
        annotations_api.not_annotatable,
        name="api-not-annotatable",
    ),
    path("donation/<uuid:uuid>", donations_api.donation_image, name="api-donation"),
    path("donate", donations_api.donate, name="api-donate"),
    path("report/<uuid:uuid>", donations_api.report, name="api-report"),
]
