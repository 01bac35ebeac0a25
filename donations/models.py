"""Donated images, their moderation history, the reports visitors make, and the
image–label pairs the crowd is asked about (created and kept servable by pairs.py)."""

from __future__ import annotations

import contextlib
import random
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.functions import RandomUUID
from django.db import models, transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone

from labels.models import Label
from people.models import Voter

from .storage import (
    RENDITIONS,
    StoredFiles,
    file_name,
    files_with_transaction,
    new_publication_key,
    private_storage,
    public_storage,
)


class ImageStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    PUBLIC = "public", "Public"
    REJECTED = "rejected", "Rejected"
    QUARANTINED = "quarantined", "Quarantined"
    HIDDEN = "hidden", "Hidden after reports"


class ImageFormat(models.TextChoices):
    JPEG = "jpeg", "JPEG"
    PNG = "png", "PNG"


class DecisionAction(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"
    QUARANTINE = "quarantine", "Quarantined"
    HIDE = "hide", "Hidden after reports"
    REOPEN = "reopen", "Sent back to review"


class ReportReason(models.TextChoices):
    SENSITIVE = "sensitive", "Sensitive or offensive content"
    COPYRIGHT = "copyright", "Copyright: not the donor's to give"
    PERSONAL = "personal", "Shows personal data or an identifiable person"
    OTHER = "other", "Something else"


# Sent inside the transaction of a moderation decision, once the image's status changed
# (and before its files move), with the decision's `action` and `was_public`.
status_changed = Signal()


class ModerationConflict(Exception):
    """Someone else decided about this image first."""


class ImageQuerySet(models.QuerySet):
    def public(self) -> ImageQuerySet:
        return self.filter(status=Image.Status.PUBLIC)

    def pending(self) -> ImageQuerySet:
        return self.filter(status=Image.Status.PENDING)

    def donated_by(self, voter) -> ImageQuerySet:
        if not voter.exists:  # a visitor who has not written anything has donated nothing
            return self.none()
        return self.filter(donor=voter)

    def rejected_files_due(self, now=None) -> ImageQuerySet:
        """Rejected pictures whose kept files may go now."""
        return self.filter(status=ImageStatus.REJECTED, files_kept_until__lte=now or timezone.now())

    def rejected_undoable(self) -> ImageQuerySet:
        """Rejected pictures whose files are still kept: their rejection can be undone."""
        return self.filter(status=ImageStatus.REJECTED, files_kept_until__isnull=False)

    def reported(self) -> ImageQuerySet:
        return self.filter(reports__resolved=False).distinct()

    def with_report_count(self) -> ImageQuerySet:
        return self.annotate(
            report_count=Count("reports", filter=Q(reports__resolved=False), distinct=True)
        )

    def anonymous_pending(self) -> ImageQuerySet:
        """Pending pictures of donors without a gold record that the site trusts — an
        account alone is no such record: anyone can sign up."""
        return self.pending().filter(Q(donor__isnull=True) | Q(donor__trusted=False))

    def waiting_room_full(self, donor: Voter, network: str) -> str | None:
        """Why a new donation must wait, or None when it may come in.

        Pending pictures wait for a moderator; anonymous donors may not bury them.
        Donors trusted by their gold record (an account's too) always come in; an
        account without one counts as anonymous, since signing up costs nothing. For everyone else there is a cap
        on anonymous pending pictures for the whole site (MAX_PENDING_ANONYMOUS) and
        one per network (MAX_PENDING_PER_NETWORK), so one client cannot close the
        site to everyone else. The answer is "site" or "network".
        """
        if donor.trusted and not donor.banned:
            return None
        per_network = settings.MAX_PENDING_PER_NETWORK
        waiting_here = self.anonymous_pending().filter(donor_network=network)
        if per_network > 0 and network and waiting_here.count() >= per_network:
            return "network"
        site = settings.MAX_PENDING_ANONYMOUS
        if site > 0 and self.anonymous_pending().count() >= site:
            return "site"
        return None


class Image(models.Model):
    Status = ImageStatus
    Format = ImageFormat

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
    donor_network = models.CharField(
        max_length=50,
        blank=True,
        db_default="",  # bulk loaders (bench/dataset.py) may leave it out
        help_text="The /24 or /48 network the donation came from.",
    )
    publication = models.CharField(
        max_length=16,
        blank=True,
        db_default="",
        help_text="Part of the public files' names; new each time the picture is published.",
    )
    donor = models.ForeignKey(
        Voter,
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
    files_kept_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A rejected picture's files are kept (private) until then, so that the "
        "rejection can be undone; `manage.py purge_rejected` deletes them after.",
    )

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(
                fields=["-created", "-id"],
                condition=Q(status=ImageStatus.PUBLIC),
                name="image_public_newest",
            ),
            models.Index(fields=["status", "created"], name="image_status_created"),
            models.Index(
                fields=["donor_network"],
                condition=Q(status=ImageStatus.PENDING),
                name="image_pending_network",
            ),
            # Exports read public images in id order, beside their pairs' (image, label)
            # index: with this the planner merge-joins and streams instead of sorting.
            models.Index(
                fields=["id"], condition=Q(status=ImageStatus.PUBLIC), name="image_public_id"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ImageStatus.values),
                name="image_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(format__in=ImageFormat.values), name="image_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(width__gt=0) & Q(height__gt=0), name="image_has_size"
            ),
            models.CheckConstraint(
                condition=Q(files_kept_until__isnull=True) | Q(status=ImageStatus.REJECTED),
                name="image_files_kept_only_when_rejected",
                violation_error_message="Only a rejected picture waits for its files to go.",
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
    def content_type(self) -> str:
        return "image/jpeg" if self.format == self.Format.JPEG else "image/png"

    @property
    def is_public(self) -> bool:
        return self.status == self.Status.PUBLIC

    # --- files ---------------------------------------------------------------
    def file_name(self, kind: str = "master", *, public: bool | None = None) -> str:
        """The rendition's name in the store the picture is in (or the one `public` says)."""
        public = self.is_public if public is None else public
        return file_name(self.uuid, kind, self.extension, self.publication if public else "")

    def rendition_size(self, kind: str) -> tuple[int, int]:
        """Width and height of a rendition, derived from the master's size."""
        limit = {"master": None, "display": 1024, "thumb": 256}[kind]
        if limit is None or max(self.width, self.height) <= limit:
            return self.width, self.height
        scale = limit / max(self.width, self.height)
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))

    def url(self, kind: str = "display") -> str:
        """Where a browser fetches a rendition: public media, or the moderators' view."""
        if self.is_public:
            return public_storage().url(self.file_name(kind))
        return reverse("donations:private-file", args=[self.uuid, kind])

    @property
    def thumb_size(self) -> tuple[int, int]:
        return self.rendition_size("thumb")

    @property
    def display_size(self) -> tuple[int, int]:
        return self.rendition_size("display")

    @property
    def thumb_url(self) -> str:
        return self.url("thumb")

    @property
    def display_url(self) -> str:
        return self.url("display")

    @property
    def master_url(self) -> str:
        return self.url("master")

    def _move_files(self, files: StoredFiles, to_public: bool) -> None:
        """Copy the renditions to the other store inside the decision's transaction (the
        copies go if it rolls back), and remove the old ones once it has committed."""
        source, target = (
            (private_storage(), public_storage())
            if to_public
            else (public_storage(), private_storage())
        )
        for kind in RENDITIONS:
            copy = self.file_name(kind, public=to_public)
            if not target.exists(copy):
                files.copy(source, self.file_name(kind, public=not to_public), target, copy)
        names = [self.file_name(kind, public=not to_public) for kind in RENDITIONS]
        transaction.on_commit(lambda: [source.delete(name) for name in names])

    def _delete_files(self) -> None:
        stores = {
            private_storage(): [self.file_name(kind, public=False) for kind in RENDITIONS],
            public_storage(): [self.file_name(kind, public=True) for kind in RENDITIONS],
        }

        def delete() -> None:
            for storage, names in stores.items():
                for name in names:
                    storage.delete(name)

        transaction.on_commit(delete)

    # --- moderation ------------------------------------------------------------
    TRANSITIONS = {
        DecisionAction.APPROVE: (
            {ImageStatus.PENDING, ImageStatus.QUARANTINED, ImageStatus.HIDDEN},
            ImageStatus.PUBLIC,
        ),
        DecisionAction.REJECT: (
            {ImageStatus.PENDING, ImageStatus.QUARANTINED, ImageStatus.HIDDEN, ImageStatus.PUBLIC},
            ImageStatus.REJECTED,
        ),
        DecisionAction.QUARANTINE: (
            {ImageStatus.PENDING, ImageStatus.HIDDEN, ImageStatus.PUBLIC},
            ImageStatus.QUARANTINED,
        ),
        DecisionAction.HIDE: ({ImageStatus.PUBLIC}, ImageStatus.HIDDEN),
        DecisionAction.REOPEN: (
            {ImageStatus.REJECTED, ImageStatus.QUARANTINED, ImageStatus.HIDDEN},
            ImageStatus.PENDING,
        ),
    }

    def decide(
        self, action: str, *, moderator=None, note: str = "", expected: str | None = None
    ) -> ModerationDecision:
        """Apply a moderation decision, or raise ModerationConflict if the image moved on.

        The row is locked first, so two moderators deciding at once are
        serialised: the second sees the first one's decision and gets a clear
        message. `expected` is the status the moderator saw when deciding.
        """
        with files_with_transaction() as files:
            allowed_from, new_status = self.TRANSITIONS[action]
            locked = Image.objects.select_for_update().get(pk=self.pk)
            if locked.status not in allowed_from or (expected and locked.status != expected):
                last = locked.decisions.select_related("moderator").first()
                who = f" by {last.moderator}" if last and last.moderator else ""
                raise ModerationConflict(
                    f"Picture {self.uuid} is already {locked.get_status_display().lower()}{who}; "
                    "nothing was changed."
                )
            if (
                action == "reopen"
                and locked.status == self.Status.REJECTED
                and locked.files_kept_until is None
            ):
                raise ModerationConflict(
                    "A rejected picture's files are gone; it cannot be reopened."
                )
            was_public = locked.status == self.Status.PUBLIC
            # The files' names are the locked row's: another moderator may have moved them.
            self.publication = locked.publication
            now = timezone.now()
            changes = {"status": new_status, "decided_at": now, "files_kept_until": None}
            if new_status == self.Status.REJECTED:
                # The files stay, private, for a while: a rejection can be undone until then.
                changes["files_kept_until"] = now + timedelta(hours=settings.REJECT_UNDO_HOURS)
            if new_status == self.Status.PUBLIC:
                changes["publication"] = new_publication_key()  # new URLs for a new publication
            Image.objects.filter(pk=self.pk).update(**changes)
            self.status = new_status
            self.files_kept_until = changes["files_kept_until"]
            self.publication = changes.get("publication", self.publication)
            if action in ("approve", "reject"):
                self.reports.update(resolved=True)
            decision = self.decisions.create(action=action, moderator=moderator, note=note[:500])
            # Its pairs follow (donations.pairs listens: it builds on this module).
            status_changed.send(sender=Image, image=self, action=action, was_public=was_public)
            # Files move last: if copying fails, the copies are removed and the
            # whole decision rolls back.
            if new_status == self.Status.PUBLIC:
                self._move_files(files, to_public=True)
            elif new_status == self.Status.REJECTED and not self.files_kept_until:
                self._delete_files()
            elif was_public:
                self._move_files(files, to_public=False)
            return decision

    @transaction.atomic
    @transaction.atomic
    def purge_files(self) -> bool:
        """Delete a rejected picture's kept files once their time is up (purge_rejected);
        False when it was not due (undone, or not yet)."""
        due = Image.objects.rejected_files_due().select_for_update().filter(pk=self.pk)
        if not due.exists():
            return False
        self._delete_files()
        Image.objects.filter(pk=self.pk).update(files_kept_until=None)
        self.files_kept_until = None
        return True

    @transaction.atomic
    def withdraw(self, donor) -> None:
        """The donor takes back a picture no moderator has decided about yet: the row goes,
        and its files once the transaction commits. ModerationConflict otherwise."""
        locked = Image.objects.select_for_update().filter(pk=self.pk).first()
        if locked is None or not donor.exists or locked.donor_id != donor.pk:
            raise ModerationConflict("Only the donor can withdraw a picture.")
        if locked.status != self.Status.PENDING:
            raise ModerationConflict(
                f"This picture is already {locked.get_status_display().lower()}; "
                "ask a moderator to remove it."
            )
        self._delete_files()
        locked.delete()

    def report(self, *, reporter, reason: str, text: str = "", network: str = "") -> Report:
        """File a report. Every report is kept for moderators; the picture leaves public
        view once voters with a history (Voter.objects.with_history) from REPORTS_TO_HIDE
        different networks have reported it. Fresh identities cost nothing to mint, so
        their reports alone never hide anything."""
        if not reporter.exists:
            reporter.save()  # a visitor's first report makes them a voter
        with transaction.atomic():  # a second report by the same person fails alone
            report = Report.objects.create(
                image=self, reporter=reporter, reason=reason, text=text, network=network
            )
        networks = self.reports.open().that_count().values("network").distinct().count()
        if self.is_public and networks >= settings.REPORTS_TO_HIDE:
            # A moderator may have acted in the meantime; their decision stands.
            with contextlib.suppress(ModerationConflict):
                self.decide("hide", note=f"reports from {networks} networks")
        return report


class ModerationDecision(models.Model):
    """Who decided what about an image, and when: one row per decision, never edited."""

    Action = DecisionAction

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
                condition=Q(action__in=DecisionAction.values),
                name="decision_action_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.image} by {self.moderator or 'system'}"


class ReportQuerySet(models.QuerySet):
    def open(self) -> ReportQuerySet:
        return self.filter(resolved=False)

    def that_count(self) -> ReportQuerySet:
        """Reports that can take a picture down: those of voters with a history."""
        return self.filter(reporter__in=Voter.objects.with_history())


class Report(models.Model):
    Reason = ReportReason

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    text = models.CharField(max_length=1000, blank=True)
    network = models.CharField(
        max_length=50, blank=True, help_text="The /24 or /48 network the report came from."
    )
    created = models.DateTimeField(default=timezone.now)
    resolved = models.BooleanField(default=False)

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "reporter"],
                name="one_report_per_person_per_image",
                violation_error_message="You have already reported this picture.",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=ReportReason.values),
                name="report_reason_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.image}"


class SuggestionUse(models.Model):
    """An image a donor wanted to tag with a suggested label; becomes a pair on acceptance."""

    suggestion = models.ForeignKey(
        "labels.LabelSuggestion", on_delete=models.CASCADE, related_name="uses"
    )
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="suggestion_uses")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "labels_suggestionuse"
        constraints = [
            models.UniqueConstraint(fields=["suggestion", "image"], name="one_use_per_image"),
        ]

    def __str__(self) -> str:
        return f"{self.suggestion} on {self.image_id}"


class ImageCollectionQuerySet(models.QuerySet):
    def of_username(self, username: str) -> ImageCollectionQuerySet:
        if "\x00" in username:
            return self.none()
        return self.filter(owner__username__iexact=username, owner__is_active=True).order_by("name")

    def named(self, owner_name: str, name: str) -> ImageCollection | None:
        """The collection `name` of the account `owner_name` (both without regard to case)."""
        if "\x00" in owner_name + name:  # no name holds one, and PostgreSQL cannot compare it
            return None
        return self.filter(owner__username__iexact=owner_name, name__iexact=name).first()


class ImageCollection(models.Model):
    """An account's named set of public pictures (the original's image collections), which
    an export query names as image.collection='owner/name'."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="image_collections"
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    images = models.ManyToManyField(Image, related_name="collections", blank=True)
    created = models.DateTimeField(default=timezone.now)

    objects = ImageCollectionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "owner",
                name="one_collection_name_per_owner",
                violation_error_message="You have a collection of that name already.",
            ),
            models.CheckConstraint(
                condition=~Q(name="") & ~Q(name__contains="/"),
                name="collection_name_valid",
                violation_error_message="A collection's name is not empty and has no '/'.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


def new_random_key() -> int:
    return random.randint(0, 2**31 - 1)


class PairStatus(models.TextChoices):
    OPEN = "open", "Open"
    VALIDATED = "validated", "Validated"
    REJECTED = "rejected", "Rejected"


class ImageLabelQuerySet(models.QuerySet):
    def public(self) -> ImageLabelQuerySet:
        return self.filter(image__status=ImageStatus.PUBLIC)

    def validated(self) -> ImageLabelQuerySet:
        return self.filter(status=PairStatus.VALIDATED)

    def open(self) -> ImageLabelQuerySet:
        return self.filter(status=PairStatus.OPEN, frozen=False)


class ImageLabel(models.Model):
    """One question for the crowd: is there a <label> in this <image>?

    Pairs are created, and their `servable` flag kept true, by donations.pairs
    only; validation's voting derives the counts and the status from the votes.
    """

    Status = PairStatus

    # No single-column indexes: one_pair_per_image_and_label leads with image and
    # pair_label_status_image with label; every vote updates this row, and each index costs.
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="pairs", db_index=False)
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="pairs", db_index=False)
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
    # Denormalised "may be served as a task": open, not frozen, on a public image,
    # with a taggable label (donations.pairs.is_servable). Task selection reads it
    # through a small partial index.
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
    ask_parts = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The donor asked about this label's parts: they become pairs once the "
        "crowd has validated the label itself.",
    )
    random_key = models.IntegerField(default=new_random_key)
    # The pair's public id (the original's image_validation.uuid, /v1/validation/<uuid>):
    # drawn by PostgreSQL, so adding the column filled every existing row in one pass.
    # Random for every pair alike: it says nothing of gold, age or order.
    uuid = models.UUIDField(db_default=RandomUUID(), unique=True, editable=False)
    added_by = models.ForeignKey(
        Voter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    objects = ImageLabelQuerySet.as_manager()

    class Meta:
        db_table = "validation_imagelabel"
        constraints = [
            models.UniqueConstraint(
                fields=["image", "label"],
                name="one_pair_per_image_and_label",
                violation_error_message="This picture already has this label.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=PairStatus.values),
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
            # Both are shares: a threshold of 0 then passes every pair, and exports
            # leave it out (exports.query.thresholds).
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1),
                name="confidence_in_range",
            ),
        ]
        indexes = [
            # With the picture last, a label's pictures (of one status) are read from the
            # index alone: what each label term of an export's query looks up. A pair's
            # picture never changes, so votes cost no more than with label and status.
            models.Index(fields=["label", "status", "image"], name="pair_label_status_image"),
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

    @property
    def is_settled(self) -> bool:
        return self.status != PairStatus.OPEN
