"""Voters, image–label pairs and their votes."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone


def voter_accuracy(correct: int, wrong: int) -> float:
    """How often a voter is expected to answer right: their gold record, smoothed and capped.

    (correct + r) / (correct + wrong + r + w), with the pseudo-counts (r, w) of
    VOTER_ACCURACY_PRIOR, at most VOTER_ACCURACY_MAX: no record earns certainty.
    """
    right_prior, wrong_prior = settings.VOTER_ACCURACY_PRIOR
    accuracy = (correct + right_prior) / (correct + wrong + right_prior + wrong_prior)
    return min(accuracy, settings.VOTER_ACCURACY_MAX)


def vote_weight(accuracy: float) -> float:
    """The evidence one vote carries: log(a / (1 − a)), and none at or below chance.

    One-coin Dawid–Skene: a voter right with probability a multiplies the odds
    that the label is present by a / (1 − a) with a yes, and divides them by it
    with a no. A pair's evidence is the sum of these logs over its counted votes.
    """
    if accuracy <= 0.5:
        return 0.0
    return math.log(accuracy / (1 - accuracy))


def vote_weight_for(
    correct: int, wrong: int, on_label: list[int] | None, is_moderator: bool = False
) -> float:
    """The weight of a vote, from its voter's gold record overall and on the pair's label.

    The record on the label, [right, wrong], counts beside VOTER_LABEL_PRIOR
    imaginary answers at the overall accuracy: someone careful everywhere but
    wrong on the gold of one label loses their say on that label only.
    Moderators weigh as much as a vote can.
    """
    if is_moderator:
        return vote_weight(settings.VOTER_ACCURACY_MAX)
    accuracy = voter_accuracy(correct, wrong)
    if on_label:
        right, missed = on_label
        strength = settings.VOTER_LABEL_PRIOR
        accuracy = (right + strength * accuracy) / (right + missed + strength)
    return vote_weight(min(accuracy, settings.VOTER_ACCURACY_MAX))


def posterior(evidence: float) -> float:
    """The probability that the label is present, from the summed log-odds (prior 0.5)."""
    if evidence >= 0:
        return 1 / (1 + math.exp(-evidence))
    odds = math.exp(evidence)
    return odds / (1 + odds)


def vote_rules() -> str:
    """The settings the database's vote functions read (migration 0006), as JSON."""
    return _rules_json(
        settings.VALIDATION_POSTERIOR,
        tuple(settings.VOTER_ACCURACY_PRIOR),
        settings.VOTER_ACCURACY_MAX,
        settings.VOTER_LABEL_PRIOR,
        settings.GOLD_PROMOTE_MIN_VOTES,
        settings.ALERT_SWING,
        settings.ALERT_BURST_VOTES,
        settings.ALERT_WINDOW_MINUTES,
    )


@functools.lru_cache(maxsize=16)
def _rules_json(posterior_bar, prior, accuracy_max, label_prior, promote, swing, burst, window):
    return json.dumps(
        {
            "bar": math.log(posterior_bar / (1 - posterior_bar)),
            "prior_right": prior[0],
            "prior_wrong": prior[1],
            "accuracy_max": accuracy_max,
            "label_prior": label_prior,
            "promote": promote,
            "swing": swing,
            "burst": burst,
            "window": window,
        }
    )


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
    gold_by_label = models.JSONField(
        default=dict,
        blank=True,
        help_text='Gold answers per label: {"label:<id>": [right, wrong]}.',
    )
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

    @staticmethod
    def label_key(label_id: int) -> str:
        return f"label:{label_id}"

    def weight(self, label_id: int | None = None) -> float:
        """The evidence each of this voter's counted votes (on a label) carries."""
        record = self.gold_by_label.get(self.label_key(label_id)) if label_id else None
        return vote_weight_for(self.gold_correct, self.gold_wrong, record, self.is_moderator)


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

    # No single-column indexes: one_pair_per_image_and_label leads with image and
    # pair_label_status with label; every vote updates this row, and each index costs.
    image = models.ForeignKey(
        "donations.Image", on_delete=models.CASCADE, related_name="pairs", db_index=False
    )
    label = models.ForeignKey(
        "labels.Label", on_delete=models.PROTECT, related_name="pairs", db_index=False
    )
    num_yes = models.PositiveIntegerField(default=0)
    num_no = models.PositiveIntegerField(default=0)
    probability = models.FloatField(default=0.0)
    confidence = models.FloatField(
        default=0.0,
        help_text=(
            "Probability that the label is present, from the counted votes weighted by "
            "each voter's gold accuracy (0 until a vote carries weight)."
        ),
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

    def recount(self) -> None:
        """Derive counts, probability, confidence, status and servable from the counted votes.

        The rule lives in the database (imagemonkey_recount, migration 0006):
        each counted vote weighs what its voter's gold record says, and the
        pair is validated when the posterior reaches VALIDATION_POSTERIOR,
        rejected when it falls to 1 − VALIDATION_POSTERIOR, open otherwise
        (and open while a reopened pair has fewer counted votes than
        `settle_after`). Locks the pair until the end of the transaction.
        """
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT num_yes, num_no, probability, confidence, status, servable, updated "
                "FROM imagemonkey_recount(%s, %s, %s)",
                [self.pk, timezone.now(), vote_rules()],
            )
            row = cursor.fetchone()
        if row[0] is None:  # the function found no such pair
            raise ImageLabel.DoesNotExist(f"no pair {self.pk} to recount")
        (
            self.num_yes,
            self.num_no,
            self.probability,
            self.confidence,
            self.status,
            self.servable,
            self.updated,
        ) = row


class Vote(models.Model):
    """One voter's answer on one pair. Answering again replaces the answer."""

    class Answer(models.IntegerChoices):
        NO = 0, "No"
        YES = 1, "Yes"
        SKIP = 2, "Can't tell"

    # Indexed by one_vote_per_voter_per_pair (pair first) and vote_voter_pair (voter first).
    pair = models.ForeignKey(
        ImageLabel, on_delete=models.CASCADE, related_name="votes", db_index=False
    )
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="votes", db_index=False)
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
            # The burst check counts one network's votes within the last minutes on
            # every vote: bounded by the window, however many votes the network cast before.
            models.Index(fields=["ip_prefix", "updated"], name="vote_prefix_updated"),
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
            votes = votes.filter(ip_prefix=self.ip_prefix, updated__gte=window_start)
            if self.pair_id:
                votes = votes.filter(pair_id=self.pair_id)
            elif self.label_id:
                votes = votes.filter(pair__label_id=self.label_id)
            return votes
        return votes.filter(pair_id=self.pair_id)
