from django.core.management.base import BaseCommand, CommandError

from exports.query import LabelQuery, QueryError
from exports.releases import ReleaseError, cut_release


def threshold(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Cut an immutable release: freeze what /v1/export?query=… holds now under an id."

    def add_arguments(self, parser):
        parser.add_argument("id", help="the release's permanent id, e.g. 2027-01")
        parser.add_argument("--query", required=True, help="an export query, e.g. 'dog | cat'")
        parser.add_argument("--min-probability", type=threshold, default=0.0)
        parser.add_argument("--min-confidence", type=threshold, default=0.0)
        parser.add_argument(
            "--status",
            choices=["validated", "any"],
            default="validated",
            help="choose the images by their validated pairs (default) or by any pairs",
        )
        parser.add_argument("--notes", default="", help="what is in it, why it was cut")

    def handle(self, *args, id, query, min_probability, min_confidence, status, notes, **options):
        try:
            parsed = LabelQuery.parse(query)
        except QueryError as error:
            raise CommandError(f"--query: {error.message}") from None
        try:
            release = cut_release(
                id,
                parsed,
                min_probability=min_probability,
                min_confidence=min_confidence,
                status=status,
                notes=notes,
            )
        except ReleaseError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"release {release.slug}: {release.images} images, {release.pairs} pairs "
            f"(snapshot {release.snapshot.isoformat()})"
        )
