from django.urls import path, re_path

from . import views

app_name = "donations"
urlpatterns = [
    path("donate", views.donate, name="donate"),
    path("donate/result/<str:batch>", views.donation_result, name="result"),
    path("donate/mine", views.my_donations, name="mine"),
    path("donate/<uuid:uuid>/withdraw", views.withdraw, name="withdraw"),
    path("donate/<uuid:uuid>/labels", views.donor_labels, name="donor-labels"),
    path("donate/<uuid:uuid>/thumb", views.donor_thumbnail, name="donor-thumb"),
    path("browse", views.browse, name="browse"),
    path("image/<uuid:uuid>", views.image_detail, name="image"),
    path("image/<uuid:uuid>/report", views.report_image, name="report"),
    re_path(
        r"^moderation/file/(?P<uuid>[0-9a-f-]{36})/(?P<kind>master|display|thumb)$",
        views.private_file,
        name="private-file",
    ),
    re_path(
        r"^media/(?P<path>[0-9a-f]{2}/[0-9a-f-]{36}(?:-[0-9a-f]{16})?(?:-display|-thumb)?\.(?:jpg|png))$",
        views.public_media,
        name="media",
    ),
]
