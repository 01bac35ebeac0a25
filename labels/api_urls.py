from django.urls import path

from . import api

urlpatterns = [
    path("label", api.labels, name="api-labels"),
    path("label/accessors", api.accessors, name="api-label-accessors"),
    path("label/random", api.random_label, name="api-label-random"),
    path("label/popular", api.popular, name="api-label-popular"),
    path("label/plurals", api.plurals, name="api-label-plurals"),
    path("label/suggestions", api.suggestions, name="api-label-suggestions"),
    path("label/suggest", api.suggest, name="api-label-suggest"),
]
