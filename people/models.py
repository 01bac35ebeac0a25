"""Voters: the pseudonymous people who donate, vote and report."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.cache import cache
from django.db import models
from django.utils import timezone


class VoterQuerySet(models.QuerySet):
    def with_history(self) -> VoterQuerySet:
        """Voters who are more than a freshly minted identity: trusted by their gold
        record, or a staff account; never banned ones. Anyone can mint the others for free
        (an account too: signing up costs an e-mail address)."""
        return self.filter(banned=False).filter(
            models.Q(trusted=True) | models.Q(user__is_staff=True)
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

    # An account deleted leaves its voter behind, detached: its votes stay as anonymous
    # evidence and its donations public (people.views.delete_account).
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
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


class Scope(models.TextChoices):
    READ = "read", "Read: tasks, your numbers"
    VOTE = "vote", "Vote and report"
    DONATE = "donate", "Donate pictures"
    ANNOTATE = "annotate", "Add labels and annotations"


class ApiTokenQuerySet(models.QuerySet):
    def of(self, user) -> ApiTokenQuerySet:
        return self.filter(user=user).order_by("-created")

    def presented(self, plaintext: str) -> ApiToken | None:
        """The token this secret names, whatever its state (revoked, expired), or None.

        Found by its prefix, then its hash compared in constant time: nothing about
        the secret can be learned from how long a refusal takes.
        """
        prefix = ApiToken.prefix_of(plaintext)
        if prefix is None:
            return None
        token = self.select_related("user").filter(prefix=prefix).first()
        digest = ApiToken.hash_secret(plaintext)
        if token is None or not hmac.compare_digest(token.secret_sha256, digest):
            return None
        return token


class ApiToken(models.Model):
    """A durable token an account makes for a script: shown once, stored as a sha256.

    It acts as its account's voter, for the scopes it was given, until it expires or
    is revoked. Its prefix (stored plainly) names it in lists; the rest is secret.
    """

    MARK = "imk_"  # every API token starts so: told apart from an anonymous X-Voter-Token
    Scope = Scope

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True)
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices))
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()
    last_used = models.DateTimeField(
        null=True, blank=True, help_text="Written at most once a minute, by writes only."
    )
    revoked = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scopes__contained_by=Scope.values) & ~models.Q(scopes=[]),
                name="api_token_scopes_valid",
                violation_error_message="A token has one or more of read, vote, donate, annotate.",
            ),
            models.CheckConstraint(
                condition=models.Q(expires__gt=models.F("created")),
                name="api_token_expires_after_created",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.MARK}{self.prefix}… ({self.description or 'no description'})"

    @staticmethod
    def hash_secret(plaintext: str) -> str:
        return hashlib.sha256(plaintext.encode()).hexdigest()

    @classmethod
    def prefix_of(cls, plaintext: str) -> str | None:
        if not plaintext.startswith(cls.MARK):
            return None
        prefix, _, secret = plaintext[len(cls.MARK) :].partition("_")
        if not (len(prefix) == 8 and secret):
            return None
        return prefix

    @classmethod
    def issue(
        cls, user, scopes, description: str = "", days: int | None = None
    ) -> tuple[ApiToken, str]:
        """A new token for `user`, and its secret (shown once, never stored)."""
        now = timezone.now()
        prefix = secrets.token_hex(4)
        plaintext = f"{cls.MARK}{prefix}_{secrets.token_urlsafe(32)}"
        token = cls.objects.create(
            user=user,
            prefix=prefix,
            secret_sha256=cls.hash_secret(plaintext),
            description=description,
            scopes=sorted(set(scopes)),
            created=now,
            expires=now + timedelta(days=days or settings.API_TOKEN_DAYS),
        )
        return token, plaintext

    @property
    def shown(self) -> str:
        return f"{self.MARK}{self.prefix}…"

    def refusal(self) -> str | None:
        """Why this token may not be used now (revoked, expired), or None."""
        if self.revoked is not None:
            return "this API token was revoked"
        if self.expires <= timezone.now():
            return "this API token has expired; make a new one in your settings"
        return None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def revoke(self) -> None:
        if self.revoked is None:
            self.revoked = timezone.now()
            ApiToken.objects.filter(pk=self.pk, revoked__isnull=True).update(revoked=self.revoked)

    # Last use: every use is noted in Redis (a read writes no row); a write by the token
    # also stores it in the database, at most once a minute.
    def _used_key(self) -> str:
        return f"api-token-used:{self.pk}"

    def note_use(self, *, writes: bool) -> None:
        now = timezone.now()
        cache.set(self._used_key(), now.timestamp(), timeout=400 * 86400)
        if writes and (self.last_used is None or now - self.last_used >= timedelta(minutes=1)):
            self.last_used = now
            ApiToken.objects.filter(pk=self.pk).update(last_used=now)

    @staticmethod
    def with_last_seen(tokens: list[ApiToken]) -> list[ApiToken]:
        """Set `last_seen` on each: the later of the stored and the noted last use."""
        noted = cache.get_many([token._used_key() for token in tokens])
        for token in tokens:
            seen = token.last_used
            if (stamp := noted.get(token._used_key())) is not None:
                moment = datetime.fromtimestamp(stamp, tz=UTC)
                seen = max(seen, moment) if seen else moment
            token.last_seen = seen
        return tokens
