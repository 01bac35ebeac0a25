"""Donated images, their moderation history and the reports visitors make."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class ImageQuerySet(models.QuerySet):
    def public(self) -> ImageQuerySet:
        return self.filter(status=Image.Status.PUBLIC)

    def pending(self) -> ImageQuerySet:
        return self.filter(status=Image.Status.PENDING)

    def donated_by(self, voter) -> ImageQuerySet:
        return self.filter(donor=voter)


class Image(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        PUBLIC = "public", "Public"
        REJECTED = "rejected", "Rejected"
        QUARANTINED = "quarantined", "Quarantined"
        HIDDEN = "hidden", "Hidden after reports"

    class Format(models.TextChoices):
        JPEG = "jpeg", "JPEG"
        PNG = "png", "PNG"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=4, choices=Format.choices)
    # sha256 of the uploaded bytes and of the decoded pixels: either one
    # identifies an exact duplicate, and a rejected image keeps both, so the
    # same file cannot come back.
    bytes_sha256 = models.CharField(max_length=64, unique=True)
    pixels_sha256 = models.CharField(max_length=64, unique=True)
    # 64-bit perceptual hash (signed, as PostgreSQL has no unsigned bigint),
    # and its four 16-bit bands: two hashes within Hamming distance 3 share at
    # least one band, so near duplicates are found with four index lookups.
    phash = models.BigIntegerField()
    phash_band0 = models.IntegerField(db_index=True)
    phash_band1 = models.IntegerField(db_index=True)
    phash_band2 = models.IntegerField(db_index=True)
    phash_band3 = models.IntegerField(db_index=True)
    master_sha256 = models.CharField(max_length=64, help_text="sha256 of the stored master file.")
    original_filename = models.CharField(max_length=255, blank=True)
    donor = models.ForeignKey(
        "validation.Voter",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="donations",
    )
    similar_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="An existing image this one looks like (near duplicate).",
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(
                fields=["-created", "-id"],
                condition=Q(status="public"),
                name="image_public_newest",
            ),
            models.Index(fields=["status", "created"], name="image_status_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "public", "rejected", "quarantined", "hidden"]),
                name="image_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(format__in=["jpeg", "png"]), name="image_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(width__gt=0) & Q(height__gt=0), name="image_has_size"
            ),
        ]

    def __str__(self) -> str:
        return str(self.uuid)

    def get_absolute_url(self) -> str:
        return reverse("donations:image", args=[self.uuid])

    @property
    def extension(self) -> str:
        return "jpg" if self.format == self.Format.JPEG else "png"

    @property
    def is_public(self) -> bool:
        return self.status == self.Status.PUBLIC


class ModerationDecision(models.Model):
    """Who decided what about an image, and when: one row per decision, never edited."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        QUARANTINE = "quarantine", "Quarantined"
        HIDE = "hide", "Hidden after reports"
        REOPEN = "reopen", "Sent back to review"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="decisions")
    action = models.CharField(max_length=12, choices=Action.choices)
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["approve", "reject", "quarantine", "hide", "reopen"]),
                name="decision_action_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.image} by {self.moderator or 'system'}"


class Report(models.Model):
    class Reason(models.TextChoices):
        SENSITIVE = "sensitive", "Sensitive or offensive content"
        COPYRIGHT = "copyright", "Copyright: not the donor's to give"
        PERSONAL = "personal", "Shows personal data or an identifiable person"
        OTHER = "other", "Something else"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        "validation.Voter", on_delete=models.CASCADE, related_name="reports"
    )
    reason = models.CharField(max_length=10, choices=Reason.choices)
    text = models.CharField(max_length=1000, blank=True)
    created = models.DateTimeField(default=timezone.now)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "reporter"],
                name="one_report_per_person_per_image",
                violation_error_message="You have already reported this picture.",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=["sensitive", "copyright", "personal", "other"]),
                name="report_reason_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.image}"
