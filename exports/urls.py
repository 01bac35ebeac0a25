"""Export: /export (the page) and /v1/export, /v1/statistics/validations/count; releases."""

from django.urls import path

from . import release_views
from . import views as export_views

app_name = "exports"
urlpatterns = [
    path("export", export_views.export_page, name="export"),
    path("v1/export", export_views.export, name="api-export"),
    path("v1/export/count", export_views.export_count, name="api-export-count"),
    path("v1/export/quality", export_views.export_quality, name="api-export-quality"),
    path(
        "v1/statistics/validations/count",
        export_views.validation_statistics,
        name="api-validation-statistics",
    ),
    path("releases", release_views.releases_page, name="releases"),
    path("releases/purge_revoked.py", release_views.purge_script, name="purge-script"),
    path("v1/releases", release_views.releases, name="api-releases"),
    path(
        "v1/releases/<str:slug>/changes",
        release_views.release_changes,
        name="api-release-changes",
    ),
    path("v1/revocations.jsonl", release_views.revocations, name="api-revocations"),
]
