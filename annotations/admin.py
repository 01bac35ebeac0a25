"""Curating outlines: their revisions and votes, and gold outlines."""

from django.contrib import admin

from .models import Annotation, AnnotationRevision, AnnotationVote
from .voting import make_gold, remove_gold


class RevisionInline(admin.TabularInline):
    model = AnnotationRevision
    extra = 0
    can_delete = False
    fields = ["number", "author", "shapes", "created"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class VoteInline(admin.TabularInline):
    model = AnnotationVote
    extra = 0
    can_delete = False
    fields = ["revision", "voter", "answer", "counted", "weight", "ip_prefix", "updated"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = [
        *("uuid", "pair", "revision", "status", "num_yes", "num_no"),
        *("confidence", "is_gold", "gold_answer", "created"),
    ]
    list_filter = ["status", "is_gold", ("pair__label", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=uuid", "=pair__image__uuid", "pair__label__name"]
    list_select_related = ["pair__label__parent", "pair__image"]
    readonly_fields = [
        *("uuid", "pair", "author", "author_network", "independent", "revision", "status"),
        *("num_yes", "num_no", "probability", "confidence", "settled_as", "is_gold"),
        *("gold_answer", "created", "updated"),
    ]
    fields = readonly_fields
    inlines = [RevisionInline, VoteInline]
    actions = ["gold_yes", "gold_no", "not_gold"]

    def has_add_permission(self, request):
        return False

    @admin.action(
        description="Make gold: the outline IS exactly the thing, drawn tightly",
        permissions=["change"],
    )
    def gold_yes(self, request, queryset):
        for annotation in queryset:
            make_gold(annotation, True)
        self.message_user(request, f"{queryset.count()} gold outline(s), known to be right.")

    @admin.action(description="Make gold: the outline is WRONG", permissions=["change"])
    def gold_no(self, request, queryset):
        for annotation in queryset:
            make_gold(annotation, False)
        self.message_user(request, f"{queryset.count()} gold outline(s), known to be wrong.")

    @admin.action(description="Remove from gold (the crowd decides again)", permissions=["change"])
    def not_gold(self, request, queryset):
        for annotation in queryset.filter(is_gold=True):
            remove_gold(annotation)
        self.message_user(request, "The outline(s) are no longer gold.")
