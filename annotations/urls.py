from django.urls import path

from . import views

app_name = "annotations"
urlpatterns = [
    path("annotate", views.annotate, name="annotate"),
    path("annotate/<int:pair_id>/outline", views.draw, name="draw"),
    path("annotate/<int:pair_id>/not-annotatable", views.not_annotatable, name="not-annotatable"),
    path("annotate/outline/<uuid:uuid>", views.revise, name="revise"),
    path("annotate/outline/<uuid:uuid>/edit", views.edit_link, name="edit-link"),
    path("validate/annotations", views.check, name="check"),
    path("validate/annotations/grid", views.check_grid, name="check-grid"),
    path("validate/annotations/<uuid:uuid>/vote", views.check_vote, name="check-vote"),
]
