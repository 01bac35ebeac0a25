"""Voters: the pseudonymous people who donate, vote and report."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class VoterQuerySet(models.QuerySet):
    def with_history(self) -> VoterQuerySet:
        """Voters who are more than a freshly minted identity: trusted by their gold
        record, or an account; never banned ones. Anyone can mint the others for free."""
        return self.filter(banned=False).filter(
            models.Q(trusted=True) | models.Q(user__isnull=False)
        )

    def with_token(self, token: str) -> Voter | None:
        """The voter an API token names, with whether its account is staff, in one query."""
        return (
            self.filter(token_sha256=Voter.hash_token(token))
            .annotate(account_is_staff=models.F("user__is_staff"))
            .first()
        )


class Voter(models.Model):
    """A pseudonymous voter: a browser session, an account, or an API token.

    A voter is created on the first request that writes (a vote, a donation, a
    report), never on a page view: pages for a visitor with none use an unsaved
    Voter, whose pk is None.
    """

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
    consensus_by_label = models.JSONField(
        default=dict,
        blank=True,
        help_text='Counted answers per label on pairs that then settled: {"label:<id>": '
        "[agreed, disagreed]} with the outcome.",
    )
    banned = models.BooleanField(
        default=False, help_text="All of this voter's votes carry no weight."
    )

    objects = VoterQuerySet.as_manager()

    class Meta:
        db_table = "validation_voter"
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
        if not self.user_id:
            return False
        if "account_is_staff" in self.__dict__:  # annotated by with_token
            return bool(self.account_is_staff)
        return self.user.is_staff

    @property
    def exists(self) -> bool:
        """False for the unsaved stand-in of a visitor who has not written anything yet."""
        return self.pk is not None

    @staticmethod
    def label_key(label_id: int) -> str:
        return f"label:{label_id}"

    def record_on(self, label_id: int) -> list[int] | None:
        """This voter's gold answers on one label, [right, wrong], if any."""
        return self.gold_by_label.get(self.label_key(label_id))

    def consensus_on(self, label_id: int) -> list[int] | None:
        """How often this voter's counted answers on a label agreed with the settled outcome."""
        return self.consensus_by_label.get(self.label_key(label_id))
