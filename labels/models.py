"""The label taxonomy: what can be tagged, how labels relate, and what donors ask for."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify


def normalize_name(text: str) -> str:
    """Fold the ways people type a label into one form: 'Traffic  Light ' → 'traffic light'.

    Characters no label can hold (controls such as NUL, lone surrogates) are
    dropped, so hostile text never reaches the database as such.
    """
    printable = "".join(
        ch for ch in text if (ch.isprintable() or ch.isspace()) and not "\ud800" <= ch <= "\udfff"
    )
    return " ".join(printable.split()).lower()


class LabelQuerySet(models.QuerySet):
    def active(self) -> LabelQuerySet:
        return self.filter(active=True)

    def top_level(self) -> LabelQuerySet:
        return self.filter(parent__isnull=True)

    def taggable(self) -> LabelQuerySet:
        """Labels a person may put on a picture: active, not meta, with an active parent."""
        return (
            self.active()
            .filter(is_meta=False)
            .filter(Q(parent__isnull=True) | Q(parent__active=True))
        )

    def annotatable(self) -> LabelQuerySet:
        """Taggable labels people outline: meta labels and scenes are not."""
        return self.taggable().filter(annotatable=True)

    def named(self, name: str) -> LabelQuerySet:
        return self.alias(lname=Lower("name")).filter(lname=normalize_name(name))

    def typeable_names(self) -> list[str]:
        """What a label field suggests as one types: names, and parts as dog/eye."""
        names = list(self.taggable().top_level().values_list("name", flat=True))
        names += [
            f"{parent}/{part}"
            for parent, part in self.taggable()
            .filter(parent__isnull=False)
            .values_list("parent__name", "name")
        ]
        return sorted(names)

    def resolve(self, text: str) -> Label | None:
        """The taggable label that `text` names: a label, a synonym, or 'parent/part'."""
        text = normalize_name(text)
        if not text:
            return None
        if "/" in text:
            parent_name, _, part = (piece.strip() for piece in text.partition("/"))
            parent = self.resolve(parent_name)
            if parent is None or parent.parent_id is not None:
                return None
            return self.taggable().filter(parent=parent).named(part).first()
        label = self.taggable().top_level().named(text).first()
        if label is not None:
            return label
        synonym = (
            Synonym.objects.select_related("label")
            .alias(lname=Lower("name"))
            .filter(lname=text, label__active=True, label__is_meta=False)
            .first()
        )
        return synonym.label if synonym else None


class Label(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sublabels",
        help_text="Set for a part of another label (dog → eye is shown as dog/eye).",
    )
    categories = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="members",
        help_text="What this label is a kind of (dog → animal).",
    )
    plural = models.CharField(max_length=100, blank=True)
    article = models.CharField(
        max_length=3,
        blank=True,
        db_default="",
        choices=[("a", "a"), ("an", "an"), ("the", "the"), ("-", "none (grass, hair)")],
        help_text="How a question names it: “a dog”, “an hour”, “the sky”, or none for "
        "“grass”. Empty: “an” before a vowel, else “a”.",
    )
    is_meta = models.BooleanField(
        "meta label",
        default=False,
        help_text="A category that groups labels but is not offered for tagging.",
    )
    active = models.BooleanField(default=True, help_text="Inactive labels are not offered.")
    annotatable = models.BooleanField(
        default=True,
        db_default=True,
        help_text="Whether people outline it in pictures: not for scenes (a beach, a kitchen) "
        "nor meta labels, which are a whole picture or nothing to point at.",
    )
    created = models.DateTimeField(default=timezone.now)

    objects = LabelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "parent",
                name="label_name_unique_per_parent",
                nulls_distinct=False,
                violation_error_message="A label with this name already exists here.",
            ),
            models.CheckConstraint(
                condition=Q(parent__isnull=True) | Q(is_meta=False),
                name="sublabels_are_not_meta",
                violation_error_message="A sublabel cannot be a meta label.",
            ),
            models.CheckConstraint(
                condition=~Q(name=""),
                name="label_name_not_empty",
                violation_error_message="A label needs a name.",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    def save(self, *args, **kwargs):
        self.name = normalize_name(self.name)
        if not self.slug:
            base = slugify(self.full_name.replace("/", " ")) or "label"
            slug, n = base, 2
            while Label.objects.filter(slug=slug).exclude(pk=self.pk).exists():
                slug, n = f"{base}-{n}", n + 1
            self.slug = slug
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("donations:browse") + f"?label={self.slug}"

    def named_with_article(self) -> str:
        """The name as a question says it: “a dog”, “an eye”, “the sky”, “grass”."""
        article = self.article or ("an" if self.name[:1] in "aeiou" else "a")
        return self.name if article == "-" else f"{article} {self.name}"

    @property
    def question(self) -> str:
        """The question voters answer about this label, in plain English."""
        if self.parent_id:
            return f"Does the {self.parent.name} in this picture have {self.named_with_article()}?"
        if self.article == "the":
            return f"Can you see {self.named_with_article()} in this picture?"
        return f"Is there {self.named_with_article()} in this picture?"

    @property
    def is_taggable(self) -> bool:
        """What LabelQuerySet.taggable() asks, of this label (its parent loaded)."""
        return self.active and not self.is_meta and (self.parent_id is None or self.parent.active)

    @property
    def is_annotatable(self) -> bool:
        """What LabelQuerySet.annotatable() asks, of this label (its parent loaded)."""
        return self.is_taggable and self.annotatable

    @property
    def full_name(self) -> str:
        """'dog' for a label, 'dog/eye' for a sublabel."""
        if self.parent_id is not None:
            return f"{self.parent.name}/{self.name}"
        return self.name

    @property
    def accessor(self) -> str:
        """How export queries name this label: dog, or dog.has='eye'."""
        if self.parent_id is not None:
            return f"{self.parent.name}.has='{self.name}'"
        return self.name

    def ancestors(self) -> set[int]:
        """Ids of every category above this label (for cycle checks)."""
        seen: set[int] = set()
        frontier = {self.pk}
        while frontier:
            ids = set(
                Label.categories.through.objects.filter(from_label_id__in=frontier).values_list(
                    "to_label_id", flat=True
                )
            )
            frontier = ids - seen
            seen |= ids
        return seen

    def check_merge_into(self, target: Label) -> None:
        """ValueError when this label cannot be merged into `target`."""
        if target.pk == self.pk:
            raise ValueError("A label cannot be merged into itself.")
        if target.parent_id is not None and target.parent_id == self.pk:
            raise ValueError("A label cannot be merged into one of its own sublabels.")

    def move_under(self, parent: Label) -> None:
        """Make this sublabel a part of another label (a new slug follows)."""
        self.parent = parent
        self.slug = ""
        self.save()

    @transaction.atomic
    def dissolve_into(self, target: Label) -> None:
        """The taxonomy's half of a merge, once nothing uses this label any more.

        Its members and categories move to `target`, suggestions that became this
        label now name the target, its synonyms point to the target, and its
        name becomes one more synonym when nothing else is called so. The
        pairs and votes are validation.merge's half, which calls this.
        """
        for member in self.members.all():
            member.categories.remove(self)
            if member.pk != target.pk:
                member.categories.add(target)
        for category in self.categories.exclude(pk=target.pk):
            target.categories.add(category)
        LabelSuggestion.objects.filter(label=self).update(label=target)
        taken = {s.lower() for s in Synonym.objects.values_list("name", flat=True)}
        for synonym in self.synonyms.all():
            synonym.label = target
            synonym.save(update_fields=["label"])
        self.delete()
        name_is_free = (
            self.name not in taken and not Label.objects.top_level().named(self.name).exists()
        )
        if self.parent_id is None and target.parent_id is None and name_is_free:
            Synonym.objects.create(name=self.name, label=target)


class Synonym(models.Model):
    name = models.CharField(max_length=100)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="synonyms")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="synonym_name_unique",
                violation_error_message="This synonym already points to a label.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} → {self.label}"

    def save(self, *args, **kwargs):
        self.name = normalize_name(self.name)
        super().save(*args, **kwargs)


class LabelSuggestionQuerySet(models.QuerySet):
    def pending(self) -> LabelSuggestionQuerySet:
        return self.filter(status=LabelSuggestion.Status.PENDING)

    def record(self, text: str) -> LabelSuggestion:
        """Count one more request for `text` (donations remembers the images it was for)."""
        name = normalize_name(text)[:100]
        suggestion, _ = self.get_or_create(name=name)
        LabelSuggestion.objects.filter(pk=suggestion.pk).update(
            times_requested=models.F("times_requested") + 1, last_requested=timezone.now()
        )
        suggestion.refresh_from_db()
        return suggestion


class SuggestionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class LabelSuggestion(models.Model):
    """A label that donors typed but the taxonomy lacks; curators accept or reject it."""

    Status = SuggestionStatus

    name = models.CharField(max_length=100)
    times_requested = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="suggestions"
    )
    created = models.DateTimeField(default=timezone.now)
    last_requested = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = LabelSuggestionQuerySet.as_manager()

    class Meta:
        ordering = ["-times_requested", "name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="suggestion_name_unique",
                violation_error_message="This label has already been suggested.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=SuggestionStatus.values),
                name="suggestion_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="accepted") | Q(label__isnull=False),
                name="accepted_suggestion_has_label",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @transaction.atomic
    def proposed(self) -> tuple[str, str]:
        """What the suggestion asks for: (parent name, name); "cat/wing" is a part of cat."""
        parent, slash, name = self.name.partition("/")
        return (normalize_name(parent), normalize_name(name)) if slash else ("", self.name)

    def accept(
        self,
        *,
        by=None,
        description: str = "",
        label: Label | None = None,
        name: str = "",
        parent: Label | None = None,
        plural: str = "",
        categories=(),
    ) -> Label:
        """Create the label (or use `label`) and mark the suggestion accepted.

        The curator may correct what the donors typed: `name`, `parent` (making it a part),
        `plural`, `categories`. Without them, "cat/wing" becomes the part wing of cat, and
        anything else a top-level label of that name. ValueError with the reason when it
        cannot be done. The images waiting for it get their pairs from
        donations.pairs.accept_suggestion, which calls this.
        """
        locked = LabelSuggestion.objects.select_for_update().get(pk=self.pk)
        if locked.status != self.Status.PENDING:
            raise ValueError(f"“{self.name}” was already {locked.get_status_display().lower()}.")
        if label is None:
            parent_name, proposed_name = self.proposed()
            name = normalize_name(name) or proposed_name
            if parent is None and parent_name:
                parent = Label.objects.top_level().named(parent_name).first()
                if parent is None:
                    raise ValueError(
                        f"“{self.name}” names a part of “{parent_name}”, which is not a label; "
                        "accept it with another parent or as a label of its own."
                    )
            if not name or "/" in name or "." in name or "'" in name:
                raise ValueError(f"“{name}” cannot be a label's name (no /, . or quotes).")
            existing = Label.objects.filter(parent=parent) if parent else Label.objects.top_level()
            label = existing.named(name).first()
        if label is None:
            label = Label.objects.create(
                name=name, parent=parent, description=description, plural=normalize_name(plural)
            )
            if categories:
                label.categories.add(*categories)
        self.status = self.Status.ACCEPTED
        self.label = label
        self.decided_at = timezone.now()
        self.decided_by = by
        self.save()
        return label

    @transaction.atomic
    def reject(self, *, by=None) -> None:
        locked = LabelSuggestion.objects.select_for_update().get(pk=self.pk)
        if locked.status != self.Status.PENDING:
            raise ValueError(f"“{self.name}” was already {locked.get_status_display().lower()}.")
        self.status = self.Status.REJECTED
        self.decided_at = timezone.now()
        self.decided_by = by
        self.save()
