from django.urls import path

from . import views

app_name = "people"
urlpatterns = [
    path("people/<str:username>", views.profile, name="profile"),
    path("settings", views.settings_page, name="settings"),
    path("settings/name", views.change_name, name="change-name"),
    path("settings/tokens", views.create_token, name="create-token"),
    path("settings/tokens/<int:pk>/revoke", views.revoke_token, name="revoke-token"),
    path("settings/delete", views.delete_account, name="delete-account"),
]
