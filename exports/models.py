"""Releases (a dataset frozen under a name) and revocations (pictures taken down since).

A release is immutable once cut (exports.releases.cut_release): its rows are the
export's rows as they were in one snapshot, so `/v1/export?release=<slug>` serves
the same dataset years later — minus the pictures revoked since, which every
download leaves out and `/v1/revocations.jsonl` lists for copies already made.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from donations.models import PairStatus

# Lower-case letters and digits, joined by single hyphens or dots: `2027-01`,
# `dogs-v2.1`. Safe in a URL, a file name and a folder name as it stands.
SLUG_PATTERN = r"^[a-z0-9]+([.-][a-z0-9]+)*$"
SLUG_MAX_LENGTH = 40


class Release(models.Model):
    slug = models.CharField(
        "id",
        max_length=SLUG_MAX_LENGTH,
        unique=True,
        validators=[
            RegexValidator(
                SLUG_PATTERN,
                "Lower-case letters and digits joined by single hyphens or dots, e.g. 2027-01.",
            )
        ],
        help_text="The release's permanent name, e.g. 2027-01.",
    )
    created = models.DateTimeField(default=timezone.now)
    snapshot = models.DateTimeField(help_text="The moment the database was read.")
    query = models.TextField(help_text="The export query, in canonical form.")
    min_probability = models.FloatField(default=0.0)
    min_confidence = models.FloatField(default=0.0)
    status = models.CharField(
        max_length=10,
        default="validated",
        db_default="validated",
        choices=[("validated", "validated"), ("any", "any")],
        help_text="Which pairs the query's terms match when choosing the images: settled "
        "(validated) ones, or any. Every pair of a chosen image is frozen, with its status.",
    )
    # The labels the query names: the tar files an image under those of them it has.
    named_label_ids = models.JSONField(default=list)
    notes = models.TextField(blank=True)
    images = models.PositiveIntegerField(default=0)
    pairs = models.PositiveIntegerField(default=0)
    master_bytes = models.BigIntegerField(
        default=0, help_text="The master files' sizes added up when the release was cut."
    )
    missing_files = models.PositiveIntegerField(default=0)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Pairs (image, label) against the previous release, counted when this one was cut.
    added = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    # Accepted outlines frozen with the pairs, and against the previous release's.
    outlines = models.PositiveIntegerField(default=0)
    outlines_added = models.PositiveIntegerField(default=0)
    outlines_removed = models.PositiveIntegerField(default=0)
    outlines_changed = models.PositiveIntegerField(default=0)
    quality = models.JSONField(
        default=dict, blank=True, help_text="The quality report (exports.quality), made at the cut."
    )

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(slug__regex=SLUG_PATTERN),
                name="release_slug_safe",
                violation_error_message="A release id is lower-case letters and digits "
                "joined by single hyphens or dots.",
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("exports:releases") + f"#release-{self.slug}"


class ReleaseEntry(models.Model):
    """One row of a release: an image–label pair as it was when the release was cut.

    An image that matched the query with no pair passing the thresholds (`~cat`
    on an unlabelled picture) has one row with no label, as it has one JSON object
    with no validations. Columns are named as the pair table's, so the export's
    SQL reads either table the same way.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="entries")
    image_id = models.IntegerField()  # not a foreign key: a release outlives any change
    image_uuid = models.UUIDField()
    label_id = models.IntegerField(null=True)
    num_yes = models.IntegerField(null=True)
    num_no = models.IntegerField(null=True)
    probability = models.FloatField(null=True)
    confidence = models.FloatField(null=True)
    status = models.CharField(max_length=10, choices=PairStatus.choices, blank=True)
    master_sha256 = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["release", "image_id", "label_id"],
                name="one_entry_per_release_image_label",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.release_id}: {self.image_uuid} {self.label_id}"


class ReleaseOutline(models.Model):
    """An accepted outline of a released pair, at the revision accepted when the release
    was cut, with what the exports write of its shapes (annotations.geometry).

    Columns are named as the revision table's (annotation_id, export_original,
    export_coco, coverage), so the export's SQL reads either table the same way
    (Export.outline_join). Not foreign keys to the outline: a release outlives any
    change, a later revision, a rejection or the outline's deletion.
    """

    entry = models.ForeignKey(
        ReleaseEntry, on_delete=models.CASCADE, related_name="outlines", db_index=False
    )
    annotation_id = models.IntegerField()
    revision = models.PositiveIntegerField(help_text="The revision accepted at the cut.")
    export_original = ArrayField(models.TextField())
    export_coco = ArrayField(models.TextField())
    coverage = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            # The entry's index: (entry, annotation) is looked up from the entry too.
            models.UniqueConstraint(
                fields=["entry", "annotation_id"],
                name="one_frozen_revision_per_outline",
                violation_error_message="A release freezes one revision of each outline.",
            ),
            models.CheckConstraint(
                condition=Q(revision__gte=1), name="release_outline_revision_positive"
            ),
            models.CheckConstraint(
                condition=Q(export_coco__len__gte=1)
                & Q(export_coco__len=F("export_original__len")),
                name="release_outline_shapes_measured",
                violation_error_message="A frozen outline has each of its shapes in both forms.",
            ),
        ]

    def __str__(self) -> str:
        return f"outline {self.annotation_id} r{self.revision} of {self.entry_id}"


class ReleaseLabel(models.Model):
    """A label of a release, with its names as they were then (labels get renamed, merged)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="labels")
    label_id = models.IntegerField()
    label = models.CharField(max_length=200)
    sublabel = models.CharField(max_length=200, blank=True)
    supercategory = models.CharField(max_length=200, blank=True)
    folder = models.CharField(max_length=500)
    pairs = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-pairs", "label", "sublabel"]
        constraints = [
            models.UniqueConstraint(fields=["release", "label_id"], name="one_label_per_release"),
        ]

    def __str__(self) -> str:
        return f"{self.label}/{self.sublabel}" if self.sublabel else self.label


class RevocationReason(models.TextChoices):
    MODERATION = "moderation", "A moderator's decision"
    REPORTS = "reports", "Reports by visitors"
    WITHDRAWAL = "withdrawal", "The donor withdrew it"
    COPYRIGHT = "copyright", "A copyright claim"


class Revocation(models.Model):
    """A picture that was public and is not any more: leave it out of every copy.

    A revocation is never lifted: a picture approved again is back in later
    releases, but not in the ones it was revoked from (see README, Releases).
    """

    Reason = RevocationReason

    image_uuid = models.UUIDField(unique=True)
    image_id = models.IntegerField()
    master_sha256 = models.CharField(max_length=64)
    display_sha256 = models.CharField(max_length=64, blank=True)
    thumb_sha256 = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(reason__in=RevocationReason.values), name="revocation_reason_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image_uuid} ({self.reason})"

    @property
    def hashes(self) -> dict[str, str]:
        found = {
            "master": self.master_sha256,
            "display": self.display_sha256,
            "thumb": self.thumb_sha256,
        }
        return {kind: value for kind, value in found.items() if value}

    def as_json(self) -> dict:
        return {
            "uuid": str(self.image_uuid),
            "sha256": self.hashes,
            "reason": self.reason,
            "date": self.created.isoformat(),
        }
