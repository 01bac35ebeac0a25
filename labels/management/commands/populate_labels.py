from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from labels.wordlist import WordlistError, load, parse_wordlists


class Command(BaseCommand):
    help = "Load the label vocabulary from wordlists/ (idempotent; never deletes)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--folder",
            default=str(Path(settings.BASE_DIR) / "wordlists" / "en"),
            help="Folder with the *.txt wordlists (default: wordlists/en).",
        )

    def handle(self, *args, folder: str, **options):
        try:
            report = load(parse_wordlists(Path(folder)))
        except WordlistError as error:
            raise CommandError(str(error)) from None
        for name in report.created:
            self.stdout.write(f"  added {name}", self.style.SUCCESS)
        for name in report.updated:
            self.stdout.write(f"  updated {name}")
        for name in report.missing_from_files:
            self.stdout.write(
                f"  note: {name!r} is in the database but not in the wordlists "
                "(kept; deactivate it in the admin if it should go)",
                self.style.WARNING,
            )
        self.stdout.write(
            f"Labels: {len(report.created)} added, {len(report.updated)} updated, "
            f"{len(report.missing_from_files)} only in the database."
        )
