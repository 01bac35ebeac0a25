from django.urls import path

from . import views

app_name = "labels"
urlpatterns = [
    path("labels", views.label_list, name="list"),
]
