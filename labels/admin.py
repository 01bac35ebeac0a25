from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from donations import pairs
from donations.models import ImageLabel
from validation import statistics
from validation.merge import merge_labels
from validation.models import Vote

from . import lookup
from .models import Label, LabelSuggestion, Synonym


class SublabelInline(admin.TabularInline):
    model = Label
    fk_name = "parent"
    fields = ["name", "description", "active"]
    extra = 0
    verbose_name = "sublabel (part)"
    verbose_name_plural = "sublabels (parts)"
    show_change_link = True


class SynonymInline(admin.TabularInline):
    model = Synonym
    extra = 0


class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        used = Label.objects.filter(members__isnull=False).distinct().order_by("name")
        return [(label.pk, label.name) for label in used]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(categories__pk=self.value())
        return queryset


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("label", "Labels"), ("sublabel", "Sublabels (parts)"), ("meta", "Meta labels")]

    def queryset(self, request, queryset):
        if self.value() == "label":
            return queryset.filter(parent__isnull=True, is_meta=False)
        if self.value() == "sublabel":
            return queryset.filter(parent__isnull=False)
        if self.value() == "meta":
            return queryset.filter(is_meta=True)
        return queryset


class MergeForm(forms.Form):
    target = forms.CharField(
        max_length=201,
        label="Merge into",
        help_text="Type the label's name (a part as dog/eye); every image–label pair and vote "
        "moves to it.",
        widget=forms.TextInput(attrs={"list": "merge-targets", "autocomplete": "off"}),
    )

    def __init__(self, *args, sources=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = {label.pk for label in sources}

    def clean_target(self) -> Label:
        text = self.cleaned_data["target"].strip()
        parent_name, slash, name = text.partition("/")
        if slash:
            parent = Label.objects.top_level().named(parent_name).first()
            target = parent and Label.objects.filter(parent=parent).named(name).first()
        else:
            target = Label.objects.top_level().named(text).first()
        if target is None:
            raise forms.ValidationError(f"There is no label “{text}”.")
        if target.pk in self.sources:
            raise forms.ValidationError("A label cannot be merged into itself.")
        return target


class AcceptForm(forms.Form):
    """What a curator makes of one suggestion: its name, a parent (for a part), plural,
    description and categories, filled in from what the donors typed."""

    name = forms.CharField(max_length=100)
    parent = forms.CharField(
        max_length=100,
        required=False,
        help_text="Only for a part: the label it belongs to.",
        widget=forms.TextInput(attrs={"list": "label-names", "autocomplete": "off"}),
    )
    plural = forms.CharField(max_length=100, required=False)
    description = forms.CharField(max_length=500, required=False)
    categories = forms.CharField(
        max_length=500, required=False, help_text="Comma-separated: what it is a kind of."
    )

    @staticmethod
    def initial_for(suggestion: LabelSuggestion) -> dict:
        parent, name = suggestion.proposed()
        return {"name": name, "parent": parent}

    def clean_parent(self) -> Label | None:
        name = self.cleaned_data["parent"].strip()
        if not name:
            return None
        parent = Label.objects.top_level().named(name).first()
        if parent is None:
            raise forms.ValidationError(f"There is no label “{name}” to be the parent.")
        return parent

    def clean_categories(self) -> list[Label]:
        names = [n.strip() for n in self.cleaned_data["categories"].split(",") if n.strip()]
        found = []
        for name in names:
            label = Label.objects.top_level().named(name).first()
            if label is None:
                raise forms.ValidationError(f"There is no label “{name}”.")
            found.append(label)
        return found

    def choices(self) -> dict:
        return dict(self.cleaned_data)


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = [
        *("name", "parent", "kind", "active", "annotatable"),
        *("images", "votes", "gold", "category_list"),
    ]
    list_filter = ["active", "annotatable", KindFilter, CategoryFilter]
    search_fields = ["name", "description", "synonyms__name", "parent__name"]
    list_select_related = ["parent"]
    filter_horizontal = ["categories"]
    autocomplete_fields = ["parent"]
    readonly_fields = ["slug", "created"]
    inlines = [SublabelInline, SynonymInline]
    actions = ["deactivate", "activate", "make_annotatable", "make_not_annotatable", "merge"]
    list_per_page = 100

    def get_deleted_objects(self, objs, request):
        """A label that pictures use is protected: say so in words, with what to do instead,
        rather than listing every pair that holds it."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            used = (
                Label.objects.filter(pk__in=[o.pk for o in objs])
                .annotate(uses=Count("pairs"))
                .filter(uses__gt=0)
            )
            protected = [
                f"“{label.full_name}” is on {label.uses} picture(s): deactivate it (it is then "
                "no longer offered, and its votes are kept) or merge it into another label."
                for label in used
            ] or protected
        return deleted, counts, perms_needed, protected

    def get_queryset(self, request):
        return statistics.with_usage(super().get_queryset(request)).prefetch_related("categories")

    @admin.display(description="kind")
    def kind(self, label):
        if label.is_meta:
            return "meta"
        return "part" if label.parent_id else "label"

    @admin.display(description="images", ordering="image_count")
    def images(self, label):
        return label.image_count

    @admin.display(description="votes", ordering="vote_count")
    def votes(self, label):
        return label.vote_count

    @admin.display(description="gold pairs", ordering="gold_count")
    def gold(self, label):
        return label.gold_count

    @admin.display(description="is a")
    def category_list(self, label):
        return ", ".join(c.name for c in label.categories.all())

    @admin.action(
        description="Deactivate the selected labels (stop offering them)", permissions=["change"]
    )
    def deactivate(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        count = Label.objects.filter(pk__in=ids).update(active=False)
        lookup.forget()
        pairs.sync_servable_for_labels(ids)
        self.message_user(request, f"{count} label(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Activate the selected labels", permissions=["change"])
    def activate(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        count = Label.objects.filter(pk__in=ids).update(active=True)
        lookup.forget()
        pairs.sync_servable_for_labels(ids)
        self.message_user(request, f"{count} label(s) activated.", messages.SUCCESS)

    @admin.action(description="Let people outline the selected labels", permissions=["change"])
    def make_annotatable(self, request, queryset):
        count = queryset.filter(is_meta=False).update(annotatable=True)
        lookup.forget()
        self.message_user(request, f"{count} label(s) may be outlined now.", messages.SUCCESS)

    @admin.action(
        description="Stop outlining the selected labels (scenes, whole-picture labels)",
        permissions=["change"],
    )
    def make_not_annotatable(self, request, queryset):
        count = queryset.update(annotatable=False)
        lookup.forget()
        self.message_user(request, f"{count} label(s) are no longer outlined.", messages.SUCCESS)

    def has_merge_permission(self, request):
        """Merging moves pairs and votes onto the target and deletes the source labels."""
        return self.has_change_permission(request) and self.has_delete_permission(request)

    @admin.action(
        description="Merge the selected labels into another label…", permissions=["merge"]
    )
    def merge(self, request, queryset):
        sources = list(queryset.select_related("parent"))
        form = MergeForm(request.POST if "confirm" in request.POST else None, sources=sources)
        if form.is_valid():
            target = form.cleaned_data["target"]
            try:
                with transaction.atomic():
                    totals = {"pairs_moved": 0, "pairs_combined": 0, "votes_dropped": 0}
                    for source in sources:
                        for key, value in merge_labels(source, target).items():
                            totals[key] = totals.get(key, 0) + value
            except ValueError as error:
                self.message_user(request, str(error), messages.ERROR)
                return None
            self.message_user(
                request,
                f"Merged {', '.join(s.full_name for s in sources)} into {target}: "
                f"{totals['pairs_moved']} pair(s) moved, {totals['pairs_combined']} combined "
                f"with existing pairs, {totals['votes_dropped']} duplicate vote(s) dropped.",
                messages.SUCCESS,
            )
            return redirect("admin:labels_label_changelist")
        impact = [
            {
                "label": source,
                "pairs": ImageLabel.objects.filter(label=source).count(),
                "votes": Vote.objects.filter(pair__label=source).count(),
                "sublabels": source.sublabels.count(),
                "synonyms": source.synonyms.count(),
            }
            for source in sources
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge labels",
            "opts": self.model._meta,
            "form": form,
            "impact": impact,
            "queryset": queryset,
            "targets": sorted(
                label.full_name
                for label in Label.objects.exclude(pk__in=[s.pk for s in sources]).select_related(
                    "parent"
                )
            ),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/labels/merge_confirmation.html", context)


@admin.register(LabelSuggestion)
class LabelSuggestionAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "people_asking",
        "pending_images",
        "status",
        "label",
        "last_requested",
    ]
    list_filter = ["status"]
    search_fields = ["name"]
    readonly_fields = ["times_requested", "created", "last_requested", "decided_at", "decided_by"]
    actions = ["accept", "reject"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_uses=Count("uses"),
                n_people=Count("uses__image__donor", distinct=True),
            )
            .select_related("label")
        )

    @admin.display(description="people asking", ordering="n_people")
    def people_asking(self, suggestion):
        return suggestion.n_people

    @admin.display(description="images waiting", ordering="n_uses")
    def pending_images(self, suggestion):
        return suggestion.n_uses

    def has_accept_permission(self, request):
        """Accepting creates a label, so it takes the right to add labels too."""
        return self.has_change_permission(request) and request.user.has_perm("labels.add_label")

    @admin.action(
        description="Accept: check name and parent, create the label, tag the waiting images",
        permissions=["accept"],
    )
    def accept(self, request, queryset):
        suggestions = list(queryset.filter(status=LabelSuggestion.Status.PENDING))
        forms = [
            AcceptForm(
                request.POST if "confirm" in request.POST else None,
                prefix=f"s{suggestion.pk}",
                initial=AcceptForm.initial_for(suggestion),
            )
            for suggestion in suggestions
        ]
        if forms and all(form.is_valid() for form in forms):
            for suggestion, form in zip(suggestions, forms, strict=True):
                try:
                    label = pairs.accept_suggestion(suggestion, by=request.user, **form.choices())
                except ValueError as error:
                    self.message_user(request, str(error), messages.WARNING)
                    continue
                self.message_user(
                    request,
                    format_html(
                        "Accepted “{}” as the label “{}”.", suggestion.name, label.full_name
                    ),
                    messages.SUCCESS,
                )
            return None
        if not suggestions:
            self.message_user(request, "Choose pending suggestions to accept.", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Accept label suggestions",
            "opts": self.model._meta,
            "rows": list(zip(suggestions, forms, strict=True)),
            "queryset": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "label_names": sorted(Label.objects.top_level().values_list("name", flat=True)),
        }
        return TemplateResponse(request, "admin/labels/accept_suggestions.html", context)

    @admin.action(description="Reject the selected suggestions", permissions=["change"])
    def reject(self, request, queryset):
        for suggestion in queryset:
            try:
                pairs.reject_suggestion(suggestion, by=request.user)
            except ValueError as error:
                self.message_user(request, str(error), messages.WARNING)
                continue
            self.message_user(request, f"Rejected “{suggestion.name}”.", messages.SUCCESS)
