from uuid import UUID

from django.core.management.base import BaseCommand, CommandError

from donations.models import Image, ModerationConflict
from donations.storage import STORE_ERRORS


class Command(BaseCommand):
    help = "Approve, reject or quarantine donated pictures by uuid (for scripts)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--approve", nargs="+", metavar="UUID", default=[])
        group.add_argument("--reject", nargs="+", metavar="UUID", default=[])
        group.add_argument("--quarantine", nargs="+", metavar="UUID", default=[])
        parser.add_argument("--note", default="", help="Why (kept with the decision).")

    def handle(self, *args, approve, reject, quarantine, note, **options):
        action, uuids = next(
            (name, values)
            for name, values in (
                ("approve", approve),
                ("reject", reject),
                ("quarantine", quarantine),
            )
            if values
        )
        failures = 0
        for text in uuids:
            try:
                image = Image.objects.get(uuid=UUID(text))
            except (ValueError, Image.DoesNotExist):
                self.stderr.write(f"{text}: no such picture")
                failures += 1
                continue
            try:
                image.decide(action, note=note or "manage.py moderate")
            except ModerationConflict as conflict:
                self.stderr.write(f"{text}: {conflict}")
                failures += 1
                continue
            except STORE_ERRORS as error:
                self.stderr.write(f"{text}: the media store failed ({error}); nothing was changed")
                failures += 1
                continue
            self.stdout.write(f"{text}: {image.get_status_display().lower()}")
        if failures:
            raise CommandError(f"{failures} of {len(uuids)} picture(s) were not changed")
