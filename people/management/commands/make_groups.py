"""Create (or bring up to date) the groups `moderators` and `curators`.

    manage.py make_groups

Idempotent: each group gets exactly the permissions listed here (others it had
are taken away). Put a staff account in a group in the admin (Users → groups);
staff alone grants nothing.
"""

from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

GROUPS = {
    # Approve and hide pictures, handle reports, freeze and reopen pairs, manage alerts,
    # discard the votes of abusive voters.
    "moderators": [
        "donations.view_image",
        "donations.change_image",
        "donations.view_report",
        "donations.change_report",
        "donations.view_moderationdecision",
        "donations.view_imagelabel",
        "donations.change_imagelabel",
        "validation.view_alert",
        "validation.change_alert",
        "validation.view_vote",
        "people.view_voter",
        "people.change_voter",
    ],
    # Curate the taxonomy (labels, parts, synonyms, merges, suggestions), make gold,
    # cut releases.
    "curators": [
        "labels.view_label",
        "labels.add_label",
        "labels.change_label",
        "labels.delete_label",
        "labels.view_synonym",
        "labels.add_synonym",
        "labels.change_synonym",
        "labels.delete_synonym",
        "labels.view_labelsuggestion",
        "labels.change_labelsuggestion",
        "donations.view_imagelabel",
        "donations.change_imagelabel",
        "exports.view_release",
        "exports.add_release",
        "exports.view_revocation",
    ],
}


def permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    try:
        return Permission.objects.get(content_type__app_label=app_label, codename=codename)
    except Permission.DoesNotExist:
        raise CommandError(f"no permission {name}: run `manage.py migrate` first") from None


class Command(BaseCommand):
    help = "Create the groups moderators and curators with their permissions."

    @transaction.atomic
    def handle(self, *args, **options):
        from django.apps import apps

        for config in apps.get_app_configs():  # permissions exist before the first request
            create_permissions(config, verbosity=0)
        for name, codenames in GROUPS.items():
            group, created = Group.objects.get_or_create(name=name)
            group.permissions.set([permission(codename) for codename in codenames])
            self.stdout.write(
                f"{'created' if created else 'updated'} {name}: {len(codenames)} permissions"
            )
