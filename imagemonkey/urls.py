from django.contrib import admin
from django.urls import include, path

from people.ratelimits import throttle_sign_in

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
