"""Voters, image–label pairs and their votes."""

from __future__ import annotations

import hashlib
import math
import random
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

WILSON_Z = 1.959963984540054  # 95 %


def wilson_bounds(yes: int, no: int) -> tuple[float, float]:
    """The Wilson 95 % interval of the yes share; (0, 1) with no votes."""
    n = yes + no
    if n == 0:
        return 0.0, 1.0
    p = yes / n
    z2 = WILSON_Z * WILSON_Z
    centre = p + z2 / (2 * n)
    margin = WILSON_Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    return max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator)


def new_random_key() -> int:
    return random.randint(0, 2**31 - 1)


class Voter(models.Model):
    """A pseudonymous voter: a browser session, an account, or an API token."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="voter",
    )
    token_sha256 = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created = models.DateTimeField(default=timezone.now)
    first_ip_prefix = models.CharField(max_length=50, blank=True)
    trusted = models.BooleanField(default=False)
    gold_correct = models.PositiveIntegerField(default=0)
    gold_wrong = models.PositiveIntegerField(default=0)
    tasks_served = models.PositiveIntegerField(default=0)
    banned = models.BooleanField(
        default=False, help_text="All of this voter's votes carry no weight."
    )

    class Meta:
        indexes = [models.Index(fields=["trusted"], name="voter_trusted")]

    def __str__(self) -> str:
        if self.user_id:
            return f"voter {self.pk} ({self.user})"
        return f"voter {self.pk}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def create_with_token(cls, **fields) -> tuple[Voter, str]:
        token = secrets.token_urlsafe(32)
        return cls.objects.create(token_sha256=cls.hash_token(token), **fields), token

    @property
    def is_moderator(self) -> bool:
        return bool(self.user_id and self.user.is_staff)


class ImageLabelQuerySet(models.QuerySet):
    def public(self) -> ImageLabelQuerySet:
        return self.filter(image__status="public")

    def validated(self) -> ImageLabelQuerySet:
        return self.filter(status=ImageLabel.Status.VALIDATED)

    def open(self) -> ImageLabelQuerySet:
        return self.filter(status=ImageLabel.Status.OPEN, frozen=False)


class ImageLabel(models.Model):
    """One question for the crowd: is there a <label> in this <image>?"""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        VALIDATED = "validated", "Validated"
        REJECTED = "rejected", "Rejected"

    image = models.ForeignKey("donations.Image", on_delete=models.CASCADE, related_name="pairs")
    label = models.ForeignKey("labels.Label", on_delete=models.PROTECT, related_name="pairs")
    num_yes = models.PositiveIntegerField(default=0)
    num_no = models.PositiveIntegerField(default=0)
    probability = models.FloatField(default=0.0)
    confidence = models.FloatField(
        default=0.0, help_text="Wilson 95 % lower bound of the yes share."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    frozen = models.BooleanField(default=False, help_text="Frozen pairs take no more votes.")
    # Denormalised "may be served as a task": open, not frozen, on a public
    # image. Task selection reads it through a small partial index.
    servable = models.BooleanField(default=False)
    settled_as = models.CharField(
        max_length=10,
        blank=True,
        help_text="The outcome this pair last settled on (for flip alerts).",
    )
    settle_after = models.PositiveIntegerField(
        default=0, help_text="A reopened pair settles only once it has this many counted votes."
    )
    is_gold = models.BooleanField(default=False)
    gold_answer = models.BooleanField(null=True, blank=True)
    random_key = models.IntegerField(default=new_random_key)
    added_by = models.ForeignKey(
        Voter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    objects = ImageLabelQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "label"],
                name="one_pair_per_image_and_label",
                violation_error_message="This picture already has this label.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "validated", "rejected"]),
                name="pair_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(is_gold=False) | Q(gold_answer__isnull=False),
                name="gold_pair_has_answer",
                violation_error_message="A gold pair needs its known answer.",
            ),
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1),
                name="probability_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["label", "status"], name="pair_label_status"),
            models.Index(
                fields=["random_key"], condition=Q(servable=True), name="pair_servable_random"
            ),
            models.Index(
                fields=["label", "random_key"],
                condition=Q(servable=True),
                name="pair_servable_label_random",
            ),
            models.Index(fields=["random_key"], condition=Q(is_gold=True), name="pair_gold_random"),
        ]

    def __str__(self) -> str:
        return f"{self.label} in {self.image_id}"

    def refresh_servable(self) -> bool:
        self.servable = (
            self.status == self.Status.OPEN and not self.frozen and self.image.status == "public"
        )
        return self.servable

    def recount(self, save: bool = True) -> None:
        """Derive the counts from the counted votes, then the probability and status."""
        counts = self.votes.filter(counted=True).aggregate(
            yes=Count("pk", filter=Q(answer=Vote.Answer.YES)),
            no=Count("pk", filter=Q(answer=Vote.Answer.NO)),
        )
        self.set_counts(counts["yes"], counts["no"])
        if save:
            self.save(
                update_fields=[
                    "num_yes",
                    "num_no",
                    "probability",
                    "confidence",
                    "status",
                    "servable",
                    "updated",
                ]
            )

    def set_counts(self, yes: int, no: int) -> None:
        self.num_yes, self.num_no = yes, no
        total = yes + no
        self.probability = yes / total if total else 0.0
        lower, upper = wilson_bounds(yes, no)
        self.confidence = lower
        threshold = getattr(settings, "VALIDATION_THRESHOLD", 0.8)
        if total < self.settle_after:
            self.status = self.Status.OPEN
        elif lower >= threshold:
            self.status = self.Status.VALIDATED
        elif upper <= 1 - threshold:
            self.status = self.Status.REJECTED
        else:
            self.status = self.Status.OPEN
        self.refresh_servable()
        self.updated = timezone.now()


class Vote(models.Model):
    """One voter's answer on one pair. Answering again replaces the answer."""

    class Answer(models.IntegerChoices):
        NO = 0, "No"
        YES = 1, "Yes"
        SKIP = 2, "Can't tell"

    pair = models.ForeignKey(ImageLabel, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="votes")
    answer = models.SmallIntegerField(choices=Answer.choices)
    counted = models.BooleanField(
        default=False, help_text="Whether this vote carries weight in the pair's counts."
    )
    ip_prefix = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "voter"],
                name="one_vote_per_voter_per_pair",
                violation_error_message="You have already voted on this picture.",
            ),
            models.CheckConstraint(condition=Q(answer__in=[0, 1, 2]), name="vote_answer_valid"),
            models.CheckConstraint(
                condition=~Q(answer=2) | Q(counted=False), name="skips_are_not_counted"
            ),
        ]
        indexes = [
            models.Index(fields=["voter", "pair"], name="vote_voter_pair"),
            models.Index(fields=["created"], name="vote_created"),
            models.Index(fields=["ip_prefix", "created"], name="vote_prefix_created"),
        ]

    def __str__(self) -> str:
        return f"{self.voter} said {self.get_answer_display()} on {self.pair}"


class Alert(models.Model):
    """Something in the votes that a moderator should look at."""

    class Kind(models.TextChoices):
        FLIP = "flip", "Outcome flipped"
        SWING = "swing", "Probability swung"
        BURST = "burst", "Many votes from one network"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    pair = models.ForeignKey(
        ImageLabel, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    label = models.ForeignKey(
        "labels.Label", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    ip_prefix = models.CharField(max_length=50, blank=True)
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["flip", "swing", "burst"]), name="alert_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.message

    def votes(self):
        """The votes this alert is about."""
        window_start = self.created - timedelta(
            minutes=getattr(settings, "ALERT_WINDOW_MINUTES", 10)
        )
        votes = Vote.objects.select_related("voter", "pair__label", "pair__image")
        if self.kind == self.Kind.BURST:
            votes = votes.filter(ip_prefix=self.ip_prefix, created__gte=window_start)
            if self.pair_id:
                votes = votes.filter(pair_id=self.pair_id)
            elif self.label_id:
                votes = votes.filter(pair__label_id=self.label_id)
            return votes
        return votes.filter(pair_id=self.pair_id)
