import time

from django.core.management.base import BaseCommand

from donations.models import Image
from donations.storage import RENDITIONS, private_storage, public_storage

# Files younger than this may belong to an upload whose transaction is still open.
GRACE_SECONDS = 3600


class Command(BaseCommand):
    help = (
        "Compare the stores (MEDIA_ROOT or the bucket, whichever MEDIA_BACKEND says) with the "
        "image rows: files without an image row, images without their files, and files in "
        "the wrong store (a non-public image's file in public media). --delete removes the "
        "stray files; rows without files are only reported."
    )

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="Remove stray files.")
        parser.add_argument(
            "--grace",
            type=int,
            default=GRACE_SECONDS,
            help="Ignore files younger than this (seconds).",
        )

    def handle(self, *args, delete: bool, grace: int, **options):
        stores = {"private": private_storage(), "public": public_storage()}
        # One listing per store (a bucket lists a thousand objects a request), then sets.
        present = {store: dict(storage.entries()) for store, storage in stores.items()}
        expected = {"private": set(), "public": set()}
        missing = []
        # A rejected picture's files stay while its rejection may be undone (purge_rejected).
        kept = Image.objects.exclude(status=Image.Status.REJECTED, files_kept_until__isnull=True)
        for image in kept.iterator(chunk_size=2000):
            store = "public" if image.is_public else "private"
            for kind in RENDITIONS:
                name = image.file_name(kind)
                expected[store].add(name)
                if name not in present[store]:
                    missing.append(
                        f"{image.uuid} ({image.status}) has no {kind} file {store}/{name}"
                    )
        stray = []
        now = time.time()
        for store, entries in present.items():
            for name, modified in sorted(entries.items()):
                if name in expected[store] or now - modified.timestamp() < grace:
                    continue
                stray.append((store, name))
        for line in missing:
            self.stdout.write(f"missing: {line}", self.style.ERROR)
        for store, name in stray:
            verb = "removed" if delete else "stray"
            if delete:
                stores[store].delete(name)
            self.stdout.write(f"{verb}: {store}/{name}", self.style.WARNING)
        self.stdout.write(f"{len(missing)} image(s) missing files, {len(stray)} stray file(s).")
