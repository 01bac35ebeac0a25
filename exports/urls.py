"""Export: /export (the page) and /v1/export, /v1/statistics/validations/count."""

from django.urls import path

from . import views as export_views

app_name = "exports"
urlpatterns = [
    path("export", export_views.export_page, name="export"),
    path("v1/export", export_views.export, name="api-export"),
    path("v1/export/count", export_views.export_count, name="api-export-count"),
    path(
        "v1/statistics/validations/count",
        export_views.validation_statistics,
        name="api-validation-statistics",
    ),
]
