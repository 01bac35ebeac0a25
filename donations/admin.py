"""Moderation in the admin: a queue of thumbnails, bulk decisions, reports and history."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .models import Image, ImageLabel, ModerationConflict, ModerationDecision, Report
from .storage import STORE_ERRORS

log = logging.getLogger(__name__)

ACTIONS = {
    "approve": "Approve (make public)",
    "reject": "Reject (the files go after a while; the same files stay refused)",
    "quarantine": "Quarantine (keep private for a closer look)",
}


# The queue's tab of rejections that can still be undone, and its one decision.
UNDO_ACTIONS = {"reopen": "Undo the rejection (back to review)"}


def apply_decision(request: HttpRequest, images, action: str, seen: str | None = None) -> None:
    """Decide about each image; report conflicts one by one, in plain words.

    `seen` is the status the moderator saw (the queue's tab); when an image has
    moved on since, it is left alone and the moderator is told.
    """
    done = 0
    for image in images:
        try:
            image.decide(action, moderator=request.user, expected=seen or image.status)
            done += 1
        except ModerationConflict as conflict:
            messages.warning(request, str(conflict))
        except STORE_ERRORS:
            log.exception("decision on %s not applied: the media store failed", image.uuid)
            messages.error(
                request,
                f"Picture {image.uuid}: its files could not be moved just now, so nothing "
                "was changed. Try again in a few minutes.",
            )
    if done and action == "reject":
        messages.success(
            request,
            f"{done} picture(s) rejected. Their files are kept for "
            f"{settings.REJECT_UNDO_HOURS} hours: undo from the queue's “Rejected” tab.",
        )
    elif done:
        verb = {"approve": "approved", "quarantine": "quarantined", "reopen": "sent back to review"}
        messages.success(request, f"{done} picture(s) {verb[action]}.")


class FlagFilter(admin.SimpleListFilter):
    title = "flags"
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return [("similar", "Possible duplicate"), ("reported", "Reported")]

    def queryset(self, request, queryset):
        if self.value() == "similar":
            return queryset.filter(similar_to__isnull=False)
        if self.value() == "reported":
            return queryset.filter(reports__resolved=False).distinct()
        return queryset


class ReportInline(admin.TabularInline):
    model = Report
    extra = 0
    can_delete = False
    readonly_fields = ["reason", "text", "reporter", "network", "created", "resolved"]


class DecisionInline(admin.TabularInline):
    model = ModerationDecision
    extra = 0
    can_delete = False
    readonly_fields = ["action", "moderator", "note", "created"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "uuid", "status", "labels", "donor_name", "created", "flags"]
    list_filter = ["status", FlagFilter, "created"]
    search_fields = ["=uuid", "original_filename", "pairs__label__name"]
    date_hierarchy = "created"
    list_per_page = 60
    actions = ["approve", "reject", "quarantine"]
    inlines = [ReportInline, DecisionInline]
    fields = [
        "preview",
        "uuid",
        "status",
        "width",
        "height",
        "format",
        "original_filename",
        "donor_name",
        "created",
        "decided_at",
        "similar_preview",
        "bytes_sha256",
        "pixels_sha256",
        "phash",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # images arrive through ingestion only

    def view_on_site(self, image: Image) -> str:
        """The public page of a public picture; the moderators' view of its file otherwise."""
        if image.is_public:
            return image.get_absolute_url()
        return reverse("donations:private-file", args=[image.uuid, "display"])

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("donor__user", "similar_to")
            .with_report_count()
            .prefetch_related(
                Prefetch("pairs", queryset=ImageLabel.objects.select_related("label__parent"))
            )
        )

    def get_urls(self):
        return [
            path(
                "queue/", self.admin_site.admin_view(self.queue_view), name="donations_image_queue"
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "queue_url": reverse("admin:donations_image_queue"),
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description="picture")
    def thumbnail(self, image: Image):
        if image.status == Image.Status.REJECTED:
            return "(deleted)"
        width, height = image.thumb_size
        return format_html(
            '<img src="{}" width="{}" height="{}" alt="" class="admin-thumb">',
            image.thumb_url,
            width,
            height,
        )

    @admin.display(description="picture")
    def preview(self, image: Image):
        if image.status == Image.Status.REJECTED and image.files_kept_until is None:
            return "The files of a rejected picture are deleted."
        return format_html('<img src="{}" alt="" class="admin-preview">', image.display_url)

    @admin.display(description="possibly the same as")
    def similar_preview(self, image: Image):
        other = image.similar_to
        if other is None:
            return "—"
        if other.status == Image.Status.REJECTED:
            return format_html("{} (rejected; files deleted)", other.uuid)
        return format_html(
            '<a href="{}"><img src="{}" alt="" class="admin-preview"></a><br>{} ({})',
            reverse("admin:donations_image_change", args=[other.pk]),
            other.display_url,
            other.uuid,
            other.get_status_display(),
        )

    @admin.display(description="labels")
    def labels(self, image: Image):
        return ", ".join(pair.label.full_name for pair in image.pairs.all()) or "—"

    @admin.display(description="donor")
    def donor_name(self, image: Image):
        donor = image.donor
        if donor is None:
            return "unknown"
        return str(donor.user) if donor.user_id else f"anonymous session (voter {donor.pk})"

    @admin.display(description="flags")
    def flags(self, image: Image):
        flags = []
        if image.similar_to_id:
            flags.append("possible duplicate")
        if image.report_count:
            flags.append(f"{image.report_count} report(s)")
        return ", ".join(flags) or "—"

    @admin.action(description=ACTIONS["approve"], permissions=["change"])
    def approve(self, request, queryset):
        apply_decision(request, queryset, "approve")

    @admin.action(description=ACTIONS["reject"], permissions=["change"])
    def reject(self, request, queryset):
        # As in the queue: say how many, and ask once more (the form answers to the queue).
        return self.confirm_reject(request, queryset, "pending")

    def confirm_reject(self, request, images, tab: str):
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject these pictures?",
            "opts": self.model._meta,
            "images": images,
            "count": images.count(),
            "tab": tab,
            "undo_hours": settings.REJECT_UNDO_HOURS,
        }
        return TemplateResponse(request, "admin/donations/confirm_reject.html", context)

    @admin.action(description=ACTIONS["quarantine"], permissions=["change"])
    def quarantine(self, request, queryset):
        apply_decision(request, queryset, "quarantine")

    def queue_view(self, request: HttpRequest):
        """Pending pictures as a grid; select some and decide about all of them at once."""
        if not self.has_change_permission(request):
            return redirect("admin:index")
        tab = request.GET.get("show", "pending")
        if request.method == "POST":
            action = request.POST.get("decision")
            if action not in ACTIONS and action not in UNDO_ACTIONS:
                messages.error(request, "Choose approve, reject or quarantine.")
            else:
                chosen = Image.objects.filter(uuid__in=request.POST.getlist("selected"))
                if not chosen:
                    messages.error(request, "Select at least one picture first.")
                elif action == "reject" and request.POST.get("confirm") != "yes":
                    # Rejecting deletes the files after a while: say how many, and ask.
                    return self.confirm_reject(request, chosen, tab)
                else:
                    seen = tab if tab in ("pending", "quarantined", "hidden") else None
                    seen = "rejected" if action == "reopen" else seen
                    apply_decision(request, chosen, action, seen)
            return HttpResponseRedirect(f"{request.path}?show={tab}")
        images = self.get_queryset(request)
        if tab == "reported":
            images = images.filter(reports__resolved=False).distinct()
        elif tab == "similar":
            images = images.filter(status=Image.Status.PENDING, similar_to__isnull=False)
        elif tab in ("quarantined", "hidden"):
            images = images.filter(status=tab)
        elif tab == "rejected":
            images = images.rejected_undoable()
        else:
            tab = "pending"
            images = images.filter(status=Image.Status.PENDING)
        counts = Image.objects.aggregate(
            pending=Count("pk", filter=Q(status="pending")),
            quarantined=Count("pk", filter=Q(status="quarantined")),
            hidden=Count("pk", filter=Q(status="hidden")),
            similar=Count("pk", filter=Q(status="pending", similar_to__isnull=False)),
        )
        counts["reported"] = Image.objects.reported().count()
        counts["rejected"] = Image.objects.rejected_undoable().count()
        context = {
            **self.admin_site.each_context(request),
            "title": "Moderation queue",
            "opts": self.model._meta,
            "images": images.order_by("created")[:120],
            "tab": tab,
            "counts": counts,
            "actions": UNDO_ACTIONS if tab == "rejected" else ACTIONS,
            "undo_hours": settings.REJECT_UNDO_HOURS,
        }
        return TemplateResponse(request, "admin/donations/queue.html", context)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["image", "reason", "text", "network", "created", "resolved"]
    list_filter = ["resolved", "reason"]
    readonly_fields = ["image", "reporter", "reason", "text", "network", "created"]
    list_select_related = ["image"]

    def has_add_permission(self, request):
        return False


@admin.register(ModerationDecision)
class ModerationDecisionAdmin(admin.ModelAdmin):
    list_display = ["created", "action", "image", "moderator", "note"]
    list_filter = ["action", "moderator"]
    list_select_related = ["image", "moderator"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
