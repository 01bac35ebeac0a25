"""The /v1/ API, in the original ImageMonkey's shapes (see /api for the documentation)."""

from django.urls import include, path

from annotations import api as annotations_api
from donations import api as donations_api
from people import api as people_api
from validation import api as validation_api
from validation import labelme_views, pair_views, statistics_views

from . import openapi_compat

urlpatterns = [
    path("", include("labels.api_urls")),
    path("openapi.json", openapi_compat.description, name="api-openapi"),
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
    path("validation", pair_views.next_validation, name="api-validation"),
    path("validation/validate", pair_views.vote_many, name="api-validation-vote-many"),
    path("validation/<uuid:uuid>", pair_views.validation, name="api-validation-pair"),
    path(
        "validation/<uuid:uuid>/validate/yes",
        pair_views.vote,
        {"answer": "yes"},
        name="api-validation-yes",
    ),
    path(
        "validation/<uuid:uuid>/validate/no",
        pair_views.vote,
        {"answer": "no"},
        name="api-validation-no",
    ),
    path("validations", pair_views.validations, name="api-validations"),
    path("statistics", statistics_views.statistics, name="api-statistics"),
    path("activity", statistics_views.activity, name="api-activity"),
    path("labelme", labelme_views.labelme, name="api-labelme"),
    path("donation/<uuid:uuid>/labelme", labelme_views.add_labels, name="api-donation-labelme"),
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
        "validation/<uuid:pair_uuid>/not-annotatable",
        annotations_api.not_annotatable,
        name="api-not-annotatable",
    ),
    path("donation/<uuid:uuid>", donations_api.donation_image, name="api-donation"),
    path("donate", donations_api.donate, name="api-donate"),
    path("report/<uuid:uuid>", donations_api.report, name="api-report"),
    path("login", people_api.login, name="api-login"),
    path("logout", people_api.logout, name="api-logout"),
    path("signup", people_api.signup, name="api-signup"),
    path("user/<str:username>/profile", people_api.profile, name="api-user-profile"),
    path(
        "user/<str:username>/imagecollections",
        donations_api.image_collections,
        name="api-image-collections",
    ),
    path(
        "user/<str:username>/imagecollection",
        donations_api.create_image_collection,
        name="api-image-collection-create",
    ),
    path(
        "user/<str:username>/imagecollection/<str:name>",
        donations_api.image_collection,
        name="api-image-collection",
    ),
    path(
        "user/<str:username>/imagecollection/<str:name>/image/<uuid:uuid>",
        donations_api.add_to_image_collection,
        name="api-image-collection-add",
    ),
    path("user/<str:username>/api-token", people_api.create_api_token, name="api-token-create"),
    path(
        "user/<str:username>/api-token/<str:token>/revoke",
        people_api.revoke_api_token,
        name="api-token-revoke",
    ),
]
