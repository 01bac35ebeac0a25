"""Outlines of the things in pictures, their revisions, the crowd's votes on them, and the
pairs waiting to be outlined.

An annotation outlines one image–label pair (a label or a part) with one or more shapes
(annotations.shapes). Editing it adds a revision; only the latest revision is voted on,
settled and exported. Votes are weighed and settled by validation's rules
(annotations.voting applies them).
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from donations.models import ImageLabel, new_random_key
from labels.models import Label
from people.models import Voter
from validation.models import VoteAnswer


class AnnotationStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class AnnotationQuerySet(models.QuerySet):
    def public(self) -> AnnotationQuerySet:
        """Annotations of public pictures (hidden, pending or rejected ones are nobody's)."""
        return self.filter(pair__image__status="public")

    def accepted(self) -> AnnotationQuerySet:
        return self.filter(status=AnnotationStatus.ACCEPTED)

    def open(self) -> AnnotationQuerySet:
        return self.filter(status=AnnotationStatus.OPEN)


class Annotation(models.Model):
    """One person's outline of the thing a pair names, in one or more revisions."""

    Status = AnnotationStatus

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    pair = models.ForeignKey(ImageLabel, on_delete=models.CASCADE, related_name="annotations")
    author = models.ForeignKey(
        Voter, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    revision = models.PositiveIntegerField(
        default=1, help_text="The latest revision's number: the one voted on and exported."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    num_yes = models.PositiveIntegerField(default=0)
    num_no = models.PositiveIntegerField(default=0)
    probability = models.FloatField(default=0.0)
    confidence = models.FloatField(
        default=0.0,
        help_text="Posterior that the latest revision is right, from its counted votes.",
    )
    settled_as = models.CharField(
        max_length=10, blank=True, help_text="The outcome the latest revision last settled on."
    )
    is_gold = models.BooleanField(default=False)
    gold_answer = models.BooleanField(null=True, blank=True)
    author_network = models.CharField(
        max_length=50, blank=True, help_text="The /24 or /48 network the first revision came from."
    )
    independent = models.BooleanField(
        default=False,
        help_text="Drawn for a task the author was served (not for a pair of their choosing): "
        "only such outlines count as evidence for the outlines they agree with.",
    )
    random_key = models.IntegerField(default=new_random_key)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    objects = AnnotationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=AnnotationStatus.values), name="annotation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(is_gold=False) | Q(gold_answer__isnull=False),
                name="gold_annotation_has_answer",
                violation_error_message="A gold outline needs its known answer.",
            ),
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1),
                name="annotation_probability_in_range",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="annotation_has_revision"),
            models.UniqueConstraint(
                fields=["pair", "author"],
                name="one_annotation_per_author_per_pair",
                violation_error_message="You have already outlined this; edit your outline.",
            ),
        ]
        indexes = [
            # Checking: open outlines from a random point, and gold ones for training.
            models.Index(
                fields=["random_key"],
                condition=Q(status=AnnotationStatus.OPEN),
                name="annotation_open_random",
            ),
            models.Index(
                fields=["random_key"], condition=Q(is_gold=True), name="annotation_gold_random"
            ),
            # …and settled ordinary ones, served as often as gold so as to hide it.
            models.Index(
                fields=["random_key"],
                condition=~Q(status=AnnotationStatus.OPEN) & Q(is_gold=False),
                name="annotation_settled_random",
            ),
            models.Index(fields=["pair", "status"], name="annotation_pair_status"),
        ]

    def __str__(self) -> str:
        return f"outline {self.uuid} of {self.pair}"

    def latest(self) -> AnnotationRevision:
        return self.revisions.get(number=self.revision)


class AnnotationRevision(models.Model):
    """The shapes of one revision of an outline, never changed once written."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    shapes = models.JSONField(help_text="Clean shapes (annotations.shapes), in master pixels.")
    author = models.ForeignKey(
        Voter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    # What the exports write of the shapes, measured once (annotations.geometry).
    export_original = ArrayField(models.TextField(), default=list, blank=True)
    export_coco = ArrayField(models.TextField(), default=list, blank=True)
    coverage = models.FloatField(default=0.0, help_text="Share of the picture covered (0–1).")

    class Meta:
        ordering = ["annotation", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "number"], name="one_revision_per_number"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="revision_number_positive"),
        ]

    def __str__(self) -> str:
        return f"revision {self.number} of {self.annotation_id}"


class AnnotationVote(models.Model):
    """One voter's answer on one revision of an outline. Answering again replaces it."""

    Answer = VoteAnswer

    annotation = models.ForeignKey(
        Annotation, on_delete=models.CASCADE, related_name="votes", db_index=False
    )
    revision = models.PositiveIntegerField()
    voter = models.ForeignKey(
        Voter, on_delete=models.CASCADE, related_name="annotation_votes", db_index=False
    )
    answer = models.SmallIntegerField(choices=Answer.choices)
    counted = models.BooleanField(default=False)
    weight = models.FloatField(default=0.0)
    quarantined = models.BooleanField(default=False)
    ip_prefix = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "revision", "voter"],
                name="one_vote_per_voter_per_revision",
                violation_error_message="You have already checked this outline.",
            ),
            models.CheckConstraint(
                condition=Q(answer__in=VoteAnswer.values), name="annotation_vote_answer_valid"
            ),
            models.CheckConstraint(
                condition=~Q(answer=VoteAnswer.SKIP) | Q(counted=False),
                name="annotation_skips_are_not_counted",
            ),
            models.CheckConstraint(
                condition=Q(quarantined=False) | Q(counted=False),
                name="quarantined_annotation_votes_are_not_counted",
            ),
        ]
        indexes = [
            models.Index(fields=["voter", "annotation"], name="annotation_vote_voter"),
            models.Index(fields=["ip_prefix", "updated"], name="annotation_vote_prefix"),
        ]

    def __str__(self) -> str:
        return f"{self.voter} said {self.get_answer_display()} on {self.annotation_id}"


class AnnotationTask(models.Model):
    """A validated pair waiting for an outline: one row per pair the crowd said yes to.

    `open` is kept true while the pair is validated, has no accepted outline and has not
    been given up as not annotatable (annotations.tasks is its one home); selection reads
    open tasks through a partial index on their random key, so outlined pairs cost
    nothing to skip. The label's annotatability and the picture's status are checked
    when a task is served.
    """

    pair = models.OneToOneField(
        ImageLabel, on_delete=models.CASCADE, primary_key=True, related_name="annotation_task"
    )
    label = models.ForeignKey(
        Label,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        help_text="The pair's label (copied, for the per-label index).",
    )
    validated = models.BooleanField(default=True)
    accepted = models.BooleanField(default=False, help_text="An outline of it was accepted.")
    not_annotatable = models.PositiveIntegerField(
        default=0, help_text="Trusted voters who said it cannot be outlined."
    )
    outlines = models.PositiveIntegerField(default=0, help_text="Outlines drawn of it so far.")
    open = models.BooleanField(default=True)
    random_key = models.IntegerField(default=new_random_key)

    class Meta:
        indexes = [
            models.Index(
                fields=["random_key"], condition=Q(open=True), name="annotation_task_random"
            ),
            models.Index(
                fields=["label", "random_key"],
                condition=Q(open=True),
                name="annotation_task_label_random",
            ),
        ]

    def __str__(self) -> str:
        return f"task: outline pair {self.pair_id}"


class NotAnnotatable(models.Model):
    """A voter's word that a pair cannot be outlined (a scene, or nothing visible)."""

    pair = models.ForeignKey(ImageLabel, on_delete=models.CASCADE, related_name="+")
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="+")
    trusted = models.BooleanField(help_text="Whether the voter counted when they said it.")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "voter"],
                name="one_not_annotatable_per_voter",
                violation_error_message="You have already said this cannot be outlined.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter} says {self.pair} cannot be outlined"


class Agreement(models.Model):
    """How well two people's outlines of the same pair agree (annotations.shapes.matched_iou),
    measured on their revisions at the time."""

    first = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="+")
    first_revision = models.PositiveIntegerField()
    second_revision = models.PositiveIntegerField()
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+")
    iou = models.FloatField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["first", "first_revision", "second", "second_revision"],
                name="one_agreement_per_revisions",
            ),
            models.CheckConstraint(condition=Q(iou__gte=0) & Q(iou__lte=1), name="iou_in_range"),
        ]
        indexes = [models.Index(fields=["label"], name="agreement_label")]

    def __str__(self) -> str:
        return f"{self.first_id} ~ {self.second_id}: {self.iou:.2f}"
