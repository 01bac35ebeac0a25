from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_save


class DonationsConfig(AppConfig):
    name = "donations"
    verbose_name = "Donations"

    def ready(self) -> None:
        from labels.models import Label

        from . import models

        post_save.connect(_label_saved, sender=Label, dispatch_uid="donations-label-servable")
        models.status_changed.connect(_image_decided, dispatch_uid="donations-image-servable")


def _image_decided(sender, image, was_public=False, **kwargs) -> None:
    """An image was approved, hidden, rejected…: its pairs may (not) be served now, and a
    page that showed it to anonymous visitors is dropped once the decision is stored."""
    from people.pagecache import forget_page

    from . import pairs

    pairs.sync_servable_for_image(image)
    if was_public:
        path = image.get_absolute_url()
        transaction.on_commit(lambda: forget_page(path))


TAGGABILITY = {"active", "is_meta", "parent"}


def _label_saved(sender, instance, created, raw=False, update_fields=None, **kwargs) -> None:
    """A label edited (activated, deactivated, made a category): its pairs follow."""
    if created or raw:
        return  # a new label has no pairs yet
    if update_fields is not None and not TAGGABILITY & set(update_fields):
        return  # a description or a plural changes nothing a pair depends on
    from . import pairs

    pairs.sync_servable_for_labels([instance.pk])
