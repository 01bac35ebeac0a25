"""Releases are cut from their "add" form (exports.add_release) and never edited afterwards;
revocations are written by moderation decisions and only listed here."""

from django import forms
from django.contrib import admin
from django.shortcuts import redirect

from .export import Export, PairFilter, count_images
from .models import Release, Revocation
from .query import MAX_LENGTH, LabelQuery, QueryError
from .releases import ReleaseError, cut_release


class CutReleaseForm(forms.ModelForm):
    query = forms.CharField(max_length=MAX_LENGTH, help_text="An export query, e.g. dog | cat.")
    min_probability = forms.FloatField(min_value=0, max_value=1, initial=0.0)
    min_confidence = forms.FloatField(min_value=0, max_value=1, initial=0.0)

    class Meta:
        model = Release
        fields = ["slug", "query", "min_probability", "min_confidence", "status", "notes"]

    def clean_query(self) -> str:
        try:
            self.parsed_query = LabelQuery.parse(self.cleaned_data["query"])
        except QueryError as error:
            raise forms.ValidationError(error.message) from None
        return str(self.parsed_query)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        export = Export(
            query=self.parsed_query,
            min_probability=data["min_probability"],
            min_confidence=data["min_confidence"],
            status=data.get("status") or PairFilter.VALIDATED,  # how cut_release chooses
        )
        if count_images(export) == 0:
            raise forms.ValidationError("This query matches no public image; nothing to release.")
        return data


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "created",
        "images",
        "pairs",
        "outlines",
        "added",
        "removed",
        "changed",
        "query",
    ]
    search_fields = ["slug", "notes"]
    readonly_fields = [
        "slug",
        "created",
        "snapshot",
        "query",
        "min_probability",
        "min_confidence",
        "named_label_ids",
        "notes",
        "images",
        "pairs",
        "outlines",
        "master_bytes",
        "missing_files",
        "previous",
        "added",
        "removed",
        "changed",
        "outlines_added",
        "outlines_removed",
        "outlines_changed",
        "quality",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:  # the add form cuts a release
            kwargs["form"] = CutReleaseForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return CutReleaseForm.Meta.fields
        return self.readonly_fields

    # has_add_permission is Django's: exports.add_release.
    def has_change_permission(self, request, obj=None):
        return False  # immutable: the change page shows it read-only to those who may view

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # a mistake an hour old may go; never by staff

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            release = cut_release(
                data["slug"],
                form.parsed_query,
                min_probability=data["min_probability"],
                min_confidence=data["min_confidence"],
                status=data.get("status") or "validated",
                notes=data.get("notes", ""),
            )
        except ReleaseError as error:
            raise _Refused(str(error)) from None
        obj.pk = release.pk
        obj.refresh_from_db()

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except _Refused as error:
            self.message_user(request, f"No release was cut: {error}", level="error")
            return redirect(request.get_full_path())


class _Refused(Exception):
    pass


@admin.register(Revocation)
class RevocationAdmin(admin.ModelAdmin):
    list_display = ["image_uuid", "reason", "created", "master_sha256"]
    list_filter = ["reason"]
    search_fields = ["image_uuid", "master_sha256"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
