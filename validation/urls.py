from django.urls import path

from . import embed_views, views

app_name = "validation"
urlpatterns = [
    path("validate", views.validate, name="validate"),
    path("verify", embed_views.verify, name="verify"),
    path("validate/<int:pair_id>/vote", views.vote, name="vote"),
    path("validate/undo", views.undo, name="undo"),
    path("validate/tutorial", views.tutorial_seen, name="tutorial-seen"),
    path("validate/grid", views.grid, name="grid"),
    path("validate/grid/undo", views.grid_undo, name="grid-undo"),
    path("label", views.label_mode, name="label-mode"),
    path("image/<uuid:uuid>/labels", views.add_label, name="add-label"),
    path("me", views.me, name="me"),
    path("statistics", views.statistics_page, name="statistics"),
]
