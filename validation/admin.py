"""Curating the crowd: pairs and gold, voters, and abuse alerts."""

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from annotations import voting as outline_voting
from donations.models import ImageLabel
from people.models import Voter

from .models import Alert, Vote
from .voting import discard_votes, freeze, gold_pool_size, release_quarantine, reopen


class VoteInline(admin.TabularInline):
    model = Vote
    extra = 0
    can_delete = False
    fields = ["voter", "answer", "counted", "ip_prefix", "created", "updated"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ImageLabel)
class ImageLabelAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "num_yes",
        "num_no",
        "probability",
        "confidence",
        "is_gold",
        "gold_answer",
        "frozen",
    ]
    list_filter = ["status", "is_gold", "frozen", ("label", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=image__uuid", "label__name"]
    list_select_related = ["label__parent", "image"]
    readonly_fields = [
        "image",
        "label",
        "num_yes",
        "num_no",
        "probability",
        "confidence",
        "status",
        "servable",
        "added_by",
        "created",
        "updated",
    ]
    fields = [*readonly_fields, "is_gold", "gold_answer", "frozen", "settle_after"]
    inlines = [VoteInline]
    actions = ["gold_yes", "gold_no", "not_gold", "freeze_pairs", "unfreeze_pairs", "reopen_pairs"]

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        pool = gold_pool_size()
        from django.conf import settings

        if pool < settings.GOLD_MIN_POOL:
            messages.info(
                request,
                f"There are {pool} gold pairs; until there are {settings.GOLD_MIN_POOL}, every "
                "moderator's answer on a pair makes it gold. Mark known answers here with the "
                "“gold: yes/no” actions.",
            )
        return super().changelist_view(request, extra_context)

    @admin.action(description="Make gold: the label IS in the picture", permissions=["change"])
    def gold_yes(self, request, queryset):
        count = queryset.update(is_gold=True, gold_answer=True)
        self.message_user(request, f"{count} gold pair(s) with the answer yes.")

    @admin.action(description="Make gold: the label is NOT in the picture", permissions=["change"])
    def gold_no(self, request, queryset):
        count = queryset.update(is_gold=True, gold_answer=False)
        self.message_user(request, f"{count} gold pair(s) with the answer no.")

    @admin.action(description="Remove from gold", permissions=["change"])
    def not_gold(self, request, queryset):
        count = queryset.update(is_gold=False, gold_answer=None)
        self.message_user(request, f"{count} pair(s) are no longer gold.")

    @admin.action(description="Freeze (take no more votes)", permissions=["change"])
    def freeze_pairs(self, request, queryset):
        for pair in queryset:
            freeze(pair, True)
        self.message_user(request, f"{queryset.count()} pair(s) frozen.")

    @admin.action(description="Unfreeze", permissions=["change"])
    def unfreeze_pairs(self, request, queryset):
        for pair in queryset:
            freeze(pair, False)
        self.message_user(request, f"{queryset.count()} pair(s) unfrozen.")

    @admin.action(description="Reopen (ask the crowd again)", permissions=["change"])
    def reopen_pairs(self, request, queryset):
        for pair in queryset:
            reopen(pair)
        self.message_user(request, f"{queryset.count()} pair(s) reopened.")


@admin.register(Voter)
class VoterAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "user",
        "trusted",
        "banned",
        "gold_correct",
        "gold_wrong",
        "votes",
        "first_ip_prefix",
        "created",
    ]
    list_filter = ["trusted", "banned"]
    search_fields = ["=pk", "user__username", "first_ip_prefix"]
    readonly_fields = [
        "user",
        "token_sha256",
        "created",
        "first_ip_prefix",
        "gold_correct",
        "gold_wrong",
        "trusted",
        "banned",
    ]
    actions = ["discard"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("user").annotate(vote_count=Count("votes"))
        )

    @admin.display(ordering="vote_count")
    def votes(self, voter):
        return voter.vote_count

    @admin.action(
        description="Discard all votes of these voters (counts are recomputed)",
        permissions=["change"],
    )
    def discard(self, request, queryset):
        for voter in queryset:
            pairs = discard_votes(voter)
            self.message_user(
                request, f"Discarded the votes of {voter}; {pairs} pair(s) recounted."
            )


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created", "kind", "message", "resolved"]
    list_filter = ["kind", "resolved"]
    readonly_fields = [
        "kind",
        "pair",
        "label",
        "ip_prefix",
        "message",
        "details",
        "created",
        "votes_involved",
    ]
    fields = [*readonly_fields, "resolved"]
    actions = ["freeze_pair", "discard_voters", "release_votes", "resolve"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="votes involved")
    def votes_involved(self, alert):
        rows = alert.votes()[:200]
        return format_html(
            "<table><tr><th>voter</th><th>pair</th><th>answer</th><th>counted</th>"
            "<th>network</th><th>when</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        vote.voter_id,
                        vote.pair,
                        vote.get_answer_display(),
                        "yes" if vote.counted else "no",
                        vote.ip_prefix,
                        vote.updated,
                    )
                    for vote in rows
                ),
            ),
        )

    def has_freeze_permission(self, request):
        """Freezing changes the alert's pair."""
        return self.has_change_permission(request) and request.user.has_perm(
            "donations.change_imagelabel"
        )

    def has_discard_permission(self, request):
        """Discarding bans every voter in the alert."""
        return self.has_change_permission(request) and request.user.has_perm("people.change_voter")

    @admin.action(description="Freeze the pair of each alert", permissions=["freeze"])
    def freeze_pair(self, request, queryset):
        frozen = 0
        for alert in queryset.select_related("pair"):
            if alert.pair:
                freeze(alert.pair, True)
                frozen += 1
        self.message_user(request, f"{frozen} pair(s) frozen.")

    @admin.action(
        description="Discard all votes of every voter in these alerts", permissions=["discard"]
    )
    def discard_voters(self, request, queryset):
        voters = {vote.voter for alert in queryset for vote in alert.votes()}
        for voter in voters:
            discard_votes(voter)
        queryset.update(resolved=True)
        self.message_user(
            request, f"Discarded the votes of {len(voters)} voter(s); counts recomputed."
        )

    @admin.action(description="Clear a burst: count its held votes again", permissions=["change"])
    def release_votes(self, request, queryset):
        bursts = queryset.filter(kind=Alert.Kind.BURST)
        recounted = sum(release_quarantine(alert) for alert in bursts)
        outlines = sum(outline_voting.release_quarantine(alert) for alert in bursts)
        self.message_user(
            request,
            f"{bursts.count()} burst(s) cleared; {recounted} pair(s) and {outlines} outline(s) "
            "recounted.",
        )

    @admin.action(description="Mark as resolved", permissions=["change"])
    def resolve(self, request, queryset):
        self.message_user(request, f"{queryset.update(resolved=True)} alert(s) resolved.")
