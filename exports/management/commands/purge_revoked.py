from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exports.purge_revoked import purge
from exports.releases import revoked_hashes


class Command(BaseCommand):
    help = (
        "Delete the revoked pictures (by the sha256 of their contents) from a local copy of a "
        "release. Without Django, exports/purge_revoked.py does the same from revocations.jsonl."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the local copy (a folder)")
        parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")

    def handle(self, *args, path, dry_run, **options):
        if not path.is_dir():
            raise CommandError(f"{path}: not a folder")
        hashes = revoked_hashes()
        removed, kept = purge(path, hashes, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for file in removed:
            self.stdout.write(f"{verb} {file}")
        self.stdout.write(
            f"{len(hashes)} revoked hashes; {verb} {len(removed)} file(s), {kept} kept"
        )
