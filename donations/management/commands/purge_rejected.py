"""Delete the files of rejected pictures once their rejection can no longer be undone."""

from django.core.management.base import BaseCommand

from donations.models import Image


class Command(BaseCommand):
    help = (
        "Delete the kept files of pictures rejected more than REJECT_UNDO_HOURS ago "
        "(their rows and hashes stay, so the same files cannot come back). Run hourly."
    )

    def handle(self, *args, **options):
        purged = sum(image.purge_files() for image in Image.objects.rejected_files_due())
        self.stdout.write(f"{purged} rejected picture(s) had their files deleted.")
