from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self) -> None:
        from donations.models import status_changed

        status_changed.connect(_image_decided, dispatch_uid="exports-revoke-taken-down")


def _image_decided(sender, image, action="", was_public=False, **kwargs) -> None:
    """A public picture taken down (rejected, quarantined, hidden) joins the revocation list."""
    if was_public:
        from .releases import revoke

        revoke(image, action)
