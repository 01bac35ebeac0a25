from allauth.account import views as account_views
from django.contrib import admin
from django.urls import include, path

from people.ratelimits import throttle_reset, throttle_sign_in

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("about", views.about, name="about"),
    path("healthz", views.healthz, name="healthz"),
    path("ping", views.ping, name="ping"),
    path("robots.txt", views.robots, name="robots"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Before the admin's own URLs, so that its sign-in is throttled.
    path("admin/login/", throttle_sign_in(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    # Before allauth's own URLs, so that sign-in and reset requests are throttled.
    path(
        "accounts/login/",
        throttle_sign_in(account_views.login),
        name="account_login",
    ),
    path(
        "accounts/password/reset/",
        throttle_reset(account_views.password_reset),
        name="account_reset_password",
    ),
    path("accounts/", include("allauth.urls")),
    path("", include("people.urls")),
    path("v1/", include("imagemonkey.api_urls")),
    path("api", views.api_docs, name="api-docs"),
    path("", include("annotations.urls")),
    path("", include("validation.urls")),
    path("", include("exports.urls")),
    path("", include("labels.urls")),
    path("", include("donations.urls")),
]

handler404 = "imagemonkey.views.page_not_found"
handler500 = "imagemonkey.views.server_error"
