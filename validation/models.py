"""Votes on image–label pairs, and the alerts they raise.

Voters live in people, pairs in donations; the rules that weigh votes and settle
pairs are validation.rules, applied by validation.voting.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from donations.models import (
    ImageLabel,
    new_random_key,  # migration 0001 names it here too
)
from labels.models import Label
from people.models import Voter


class VoteAnswer(models.IntegerChoices):
    NO = 0, "No"
    YES = 1, "Yes"
    SKIP = 2, "Can't tell"


class Vote(models.Model):
    """One voter's answer on one pair. Answering again replaces the answer."""

    Answer = VoteAnswer

    # Indexed by one_vote_per_voter_per_pair (pair first) and vote_voter_pair (voter first).
    pair = models.ForeignKey(
        ImageLabel, on_delete=models.CASCADE, related_name="votes", db_index=False
    )
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="votes", db_index=False)
    answer = models.SmallIntegerField(choices=Answer.choices)
    counted = models.BooleanField(
        default=False, help_text="Whether this vote carries weight in the pair's counts."
    )
    weight = models.FloatField(
        default=0.0,
        help_text=(
            "The evidence this vote carries when counted (validation.rules.vote_weight_for), "
            "set when it is cast and rewritten when its voter's trust or gold record on "
            "the label changes."
        ),
    )
    quarantined = models.BooleanField(
        default=False,
        help_text="Held out of the counts after a burst from its network, until a moderator "
        "clears the alert.",
    )
    undone = models.BooleanField(
        default=False,
        db_default=False,  # rows written with COPY (bench/) need not name it
        help_text="Taken back by its voter within a minute (voting.undo_last_vote): it counts "
        "for nothing, but it stays, so that a gold answer is never scored twice.",
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
            models.CheckConstraint(
                condition=Q(answer__in=VoteAnswer.values), name="vote_answer_valid"
            ),
            models.CheckConstraint(
                condition=~Q(answer=VoteAnswer.SKIP) | Q(counted=False),
                name="skips_are_not_counted",
            ),
            models.CheckConstraint(
                condition=Q(quarantined=False) | Q(counted=False),
                name="quarantined_votes_are_not_counted",
            ),
            models.CheckConstraint(
                condition=Q(undone=False) | Q(counted=False, weight=0.0),
                name="undone_votes_are_not_counted",
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


class RevoteSample(models.Model):
    """A settled pair drawn at random to be asked again, blind, of trusted voters.

    Drawn when the pair first settles (REVOTE_SAMPLE_RATE, rules.draws_revote) and
    served now and then as an ordinary task (selection.revote_task). Votes on it
    are stored like any vote on a settled pair: uncounted, so they never move the
    settled state; their agreement with `settled_as` is a second estimate of the
    label's precision beside gold's (exports.quality).
    """

    pair = models.OneToOneField(
        ImageLabel, on_delete=models.CASCADE, related_name="revote_sample", primary_key=True
    )
    settled_as = models.CharField(max_length=10, help_text="The pair's status when it was drawn.")
    random_key = models.IntegerField(default=new_random_key)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["random_key"], name="revote_random_key")]
        constraints = [
            models.CheckConstraint(
                condition=Q(settled_as__in=["validated", "rejected"]),
                name="revote_settled_as_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"re-vote of pair {self.pair_id} ({self.settled_as})"


class AlertKind(models.TextChoices):
    FLIP = "flip", "Outcome flipped"
    SWING = "swing", "Probability swung"
    BURST = "burst", "Many votes from one network"


class Alert(models.Model):
    """Something in the votes that a moderator should look at."""

    Kind = AlertKind

    kind = models.CharField(max_length=10, choices=Kind.choices)
    pair = models.ForeignKey(
        ImageLabel, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    ip_prefix = models.CharField(max_length=50, blank=True)
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind_valid"),
        ]
        indexes = [
            # Every vote asks whether its network is held on its label: open bursts only.
            models.Index(
                fields=["ip_prefix", "label", "created"],
                condition=Q(kind=AlertKind.BURST, resolved=False),
                name="alert_open_burst",
            ),
        ]

    def __str__(self) -> str:
        return self.message

    def votes(self):
        """The votes this alert is about."""
        window_start = self.created - timedelta(minutes=settings.ALERT_WINDOW_MINUTES)
        votes = Vote.objects.select_related("voter", "pair__label", "pair__image")
        if self.kind == self.Kind.BURST:
            votes = votes.filter(ip_prefix=self.ip_prefix, updated__gte=window_start)
            if self.pair_id:
                votes = votes.filter(pair_id=self.pair_id)
            elif self.label_id:
                votes = votes.filter(pair__label_id=self.label_id)
            return votes
        return votes.filter(pair_id=self.pair_id)
