import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from donations.storage import (
    bucket_stores,
    filesystem_stores,
    is_temporary,
    public_read_policy,
    sha256_of,
)


class Command(BaseCommand):
    help = (
        "Image files across backends. migrate-to-s3: copy MEDIA_ROOT's files into the bucket; "
        "bucket-policy: print the policy the bucket needs."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        migrate = actions.add_parser(
            "migrate-to-s3",
            help=(
                "Copy every file of MEDIA_ROOT/private and MEDIA_ROOT/public to the same names "
                "under private/ and public/ of AWS_STORAGE_BUCKET_NAME, each read back and "
                "checked by sha256. Objects already there with the same sha256 are skipped, "
                "so an interrupted run is resumed by running it again."
            ),
        )
        migrate.add_argument(
            "--dry-run", action="store_true", help="Only say what would be copied."
        )
        migrate.add_argument(
            "--remove-local",
            action="store_true",
            help="Delete each local file once the bucket holds it with the same sha256.",
        )

        actions.add_parser(
            "bucket-policy",
            help="Print the bucket policy (JSON) that lets anyone read public/ and nothing else.",
        )

    def handle(self, *args, action: str, **options):
        if not settings.AWS_STORAGE_BUCKET_NAME:
            raise CommandError("Set AWS_STORAGE_BUCKET_NAME (and the other AWS_* settings) first.")
        if action == "migrate-to-s3":
            self.migrate_to_s3(options["dry_run"], options["remove_local"])
        elif action == "bucket-policy":
            policy = public_read_policy(settings.AWS_STORAGE_BUCKET_NAME)
            self.stdout.write(json.dumps(policy, indent=2))

    def migrate_to_s3(self, dry_run: bool, remove_local: bool) -> None:
        copied = present = failed = removed = 0
        copied_bytes = 0
        verb = "would copy" if dry_run else "copied"
        for store, source, target in zip(
            ("private", "public"), filesystem_stores(), bucket_stores(), strict=True
        ):
            for name, _ in sorted(source.entries()):
                if is_temporary(name):
                    continue
                local = source.sha256(name)
                if local is None:  # removed since the listing
                    continue
                if target.sha256(name) == local:
                    present += 1
                else:
                    size = source.size(name)
                    if not dry_run:
                        with source.open(name, "rb") as handle:
                            target.save(name, handle)
                        with target.open(name, "rb") as handle:  # read back, not trusted
                            stored = sha256_of(handle)
                        if stored != local:
                            failed += 1
                            self.stdout.write(
                                f"failed: {store}/{name}: the bucket holds sha256 {stored}, "
                                f"the file has {local}",
                                self.style.ERROR,
                            )
                            continue
                    copied += 1
                    copied_bytes += size
                    self.stdout.write(f"{verb}: {store}/{name} ({size} bytes)")
                if remove_local and not dry_run:
                    source.delete(name)
                    removed += 1
        bucket = settings.AWS_STORAGE_BUCKET_NAME
        summary = (
            f"{copied} file(s) {verb} ({copied_bytes} bytes), {present} already in bucket "
            f"{bucket} with the same sha256, {failed} failed"
        )
        if remove_local:
            summary += f", {removed} local file(s) removed"
        self.stdout.write(summary + ".")
        if failed:
            raise CommandError(f"{failed} file(s) did not arrive intact; run the command again.")
