"""/export (the page), /v1/export, /v1/export/count, /v1/export/quality and
/v1/statistics/validations/count."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from labels.models import Label
from people.http import json_error, public_read
from people.ratelimits import limit

from .bounds import TooCostly, TooSlow, check_cost
from .detection import KINDS as DETECTION_KINDS
from .export import (
    BUNDLES_IMAGES,
    BYTES_PER_PIXEL,
    DEFAULT_SEED,
    SIZES,
    Export,
    Layout,
    PairFilter,
    count_images,
    first_images,
    measure_quality,
    summarize,
    validation_counts,
)
from .formats import FORMATS
from .models import SLUG_MAX_LENGTH, SLUG_PATTERN, Release
from .query import MAX_LENGTH, LabelQuery, QueryError
from .releases import release_export
from .renderers import render_tagged_json

PREVIEW_IMAGES = 12
PREVIEW_LABELS = 20
IMAGE_PATH = "/v1/donation/"  # where an image's bytes live: /v1/donation/<uuid>
FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}

# The parameters that choose what an export holds; a release has chosen them already.
RELEASE_EXCLUDES = ("query", "min_probability", "min_confidence", "annotations_only")

THRESHOLD_ERRORS = {
    "invalid": "must be a number between 0 and 1",
    "min_value": "must be a number between 0 and 1",
    "max_value": "must be a number between 0 and 1",
}


class ExportForm(forms.Form):
    """The export's parameters, shared by the page and the API."""

    query = forms.CharField(
        required=False,  # unless a release is asked for (clean)
        max_length=MAX_LENGTH,
        error_messages={
            "required": "a query is required, e.g. dog | cat",
            "max_length": f"the query is too long: at most {MAX_LENGTH:,} characters",
        },
    )
    min_probability = forms.FloatField(
        required=False, min_value=0, max_value=1, error_messages=THRESHOLD_ERRORS
    )
    min_confidence = forms.FloatField(
        required=False, min_value=0, max_value=1, error_messages=THRESHOLD_ERRORS
    )
    status = forms.ChoiceField(
        required=False,
        choices=[(name, name) for name in PairFilter.CHOICES],
        error_messages={"invalid_choice": f"must be one of {', '.join(PairFilter.CHOICES)}"},
    )
    negatives = forms.CharField(required=False, strip=True)
    annotations_only = forms.CharField(required=False, strip=True)
    layout = forms.ChoiceField(
        required=False,
        choices=[(name, name) for name in Layout.CHOICES],
        error_messages={"invalid_choice": f"must be one of {', '.join(Layout.CHOICES)}"},
    )
    size = forms.ChoiceField(
        required=False,
        choices=[(name, name) for name in SIZES],
        error_messages={"invalid_choice": f"must be one of {', '.join(SIZES)}"},
    )
    split = forms.CharField(required=False, strip=True, max_length=20)
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        error_messages={
            "invalid": "must be a whole number from 0 to 2147483647",
            "min_value": "must be a whole number from 0 to 2147483647",
            "max_value": "must be a whole number from 0 to 2147483647",
        },
    )
    format = forms.ChoiceField(
        required=False,
        choices=[(name, f.title) for name, f in FORMATS.items()],
        error_messages={"invalid_choice": f"must be one of {', '.join(FORMATS)}"},
    )
    release = forms.CharField(required=False, max_length=SLUG_MAX_LENGTH)

    query_error: QueryError | None = None
    release_missing = False

    def __init__(self, *args, original_default: bool = False, **kwargs):
        # /v1/export in the original JSON shape without a status keeps the original
        # meaning (every pair, thresholds only): pyimagemonkey filters by itself.
        self.original_default = original_default
        super().__init__(*args, **kwargs)

    def clean_query(self) -> LabelQuery | None:
        if not self.cleaned_data["query"]:
            return None
        try:
            return LabelQuery.parse(self.cleaned_data["query"])
        except QueryError as error:
            self.query_error = error
            raise forms.ValidationError(error.message) from None

    def _flag(self, name: str) -> bool:
        value = self.cleaned_data[name].lower()
        if value not in FLAGS:
            raise forms.ValidationError("must be true or false")
        return FLAGS[value]

    def clean_annotations_only(self) -> bool:
        return self._flag("annotations_only")

    def clean_negatives(self) -> bool:
        return self._flag("negatives")

    def clean_format(self) -> str:
        return self.cleaned_data["format"] or "json"

    def clean_split(self) -> tuple[int, int, int] | None:
        """`80/10/10`: train, val and test percentages, whole numbers that sum to 100."""
        text = self.cleaned_data["split"]
        if not text:
            return None
        parts = text.split("/")
        digits = all(part.strip().isascii() and part.strip().isdigit() for part in parts)
        if len(parts) != 3 or not digits:
            raise forms.ValidationError(
                "must be three whole percentages for train/val/test, as in 80/10/10"
            )
        train, val, test = (int(part) for part in parts)
        if train + val + test != 100:
            raise forms.ValidationError(
                f"the train/val/test percentages must sum to 100, not {train + val + test}"
            )
        return train, val, test

    def clean_seed(self) -> int:
        seed = self.cleaned_data["seed"]
        return DEFAULT_SEED if seed is None else seed

    def clean_layout(self) -> str:
        return self.cleaned_data["layout"] or Layout.SINGLE

    def clean_size(self) -> str:
        return self.cleaned_data["size"] or "master"

    def clean_release(self) -> Release | None:
        slug = self.cleaned_data["release"]
        if not slug:
            return None
        release = None
        if re.fullmatch(SLUG_PATTERN, slug):
            release = Release.objects.filter(slug=slug).first()
        if release is None:
            self.release_missing = True
            raise forms.ValidationError(f"there is no release {slug!r}; see /v1/releases")
        return release

    def clean(self) -> dict:
        data = super().clean()
        if data.get("release") is not None:
            # A release is its own query and thresholds: refuse rather than ignore others.
            given = [name for name in RELEASE_EXCLUDES if self.data.get(name)]
            if given:
                self.add_error(
                    "release",
                    f"a release is exported as it was cut; leave out {', '.join(given)}",
                )
        elif "query" in data and data["query"] is None and "release" not in self.errors:
            self.add_error("query", self.fields["query"].error_messages["required"])
        if not data.get("status"):
            original = self.original_default and data.get("format") == "json"
            # Negatives exist among settled pairs only: asking for them is asking for those.
            if original and not data.get("negatives"):
                data["status"] = PairFilter.ANY
            else:
                data["status"] = PairFilter.VALIDATED
        if data.get("negatives") and data["status"] != PairFilter.VALIDATED:
            self.add_error(
                "negatives",
                "negatives are rejected pairs set beside validated ones: "
                "use them with status=validated (or no status)",
            )
        return data

    def export(self, request: HttpRequest) -> Export:
        """The export asked for; TooCostly when its query is too expensive to run."""
        data = self.cleaned_data
        packaging = {
            name: data[name] for name in ("status", "negatives", "layout", "size", "split", "seed")
        }
        if data["release"] is not None:
            prefix = request.build_absolute_uri(IMAGE_PATH)
            # A detection dataset holds only pictures with a frozen outline.
            outlined = data["format"] in DETECTION_KINDS
            return release_export(data["release"], prefix, annotations_only=outlined, **packaging)
        dataset = Export(
            query=data["query"],
            min_probability=data["min_probability"] or 0.0,
            min_confidence=data["min_confidence"] or 0.0,
            # A detection dataset holds only pictures with outlines (exports.detection).
            annotations_only=data["annotations_only"] or data["format"] in DETECTION_KINDS,
            **packaging,
            image_url_prefix=request.build_absolute_uri(IMAGE_PATH),
        )
        check_cost(dataset)
        return dataset

    def api_error(self) -> JsonResponse:
        """400 for a wrong query or format (with the position), 422 for a malformed number."""
        if self.query_error is not None:
            return json_error(self.query_error.message, 400, position=self.query_error.position)
        if self.release_missing:
            return json_error(f"release: {self.errors['release'][0]}", 404)
        for name in (
            "release",
            "query",
            "format",
            "status",
            "negatives",
            "annotations_only",
            "layout",
            "size",
            "split",
            "min_probability",
            "min_confidence",
            "seed",
        ):
            if name in self.errors:
                status = 422 if name.startswith("min_") or name == "seed" else 400
                return json_error(f"{name}: {self.errors[name][0]}", status)
        return json_error("invalid parameters", 400)


def attachment(filename: str) -> str:
    """Content-Disposition for a download: an ASCII name, and the RFC 6266 filename* form."""
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def download_name(export: Export, extension: str) -> str:
    if export.release_id is not None:
        return f"imagemonkey-release-{export.release_slug}.{extension}"
    stem = slugify(str(export.query))[:60].strip("-") or "export"
    return f"imagemonkey-{stem}-{timezone.now():%Y%m%d-%H%M%S}.{extension}"


def tags_query(text: str) -> LabelQuery:
    """The 2017 form's `tags=dog,cat`: those label names joined with | (each quoted, so
    a name is never read as query syntax); QueryError as for a query."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise QueryError("name at least one label, e.g. tags=dog,cat", 0)
    return LabelQuery.parse(" | ".join("'" + name.replace("'", "''") + "'" for name in names))


def export_tags(request: HttpRequest) -> HttpResponse:
    """GET /v1/export?tags=a,b: the 2017 form. Every pair of those labels on the public
    images that have one, with its counts: [{uuid, label, sublabel, provider, probability,
    num_yes, num_no, annotations}]."""
    others = sorted(set(request.GET) - {"tags"})
    if others:
        return json_error(
            f"tags= is the 2017 form and takes nothing else ({', '.join(others)[:200]}); "
            "use query= for the rest",
            400,
        )
    text = request.GET["tags"]
    if len(text) > MAX_LENGTH:
        return json_error(f"tags: at most {MAX_LENGTH:,} characters", 400)
    try:
        query = tags_query(text)
    except QueryError as error:
        return json_error(error.message, 422 if not text.strip(", ") else 400)
    dataset = Export(
        query=query,
        status=PairFilter.ANY,
        image_url_prefix=request.build_absolute_uri(IMAGE_PATH),
    )
    try:
        check_cost(dataset)
    except TooCostly as error:
        return json_error(str(error), 400)
    body = iter(()) if request.method == "HEAD" else render_tagged_json(dataset)
    response = StreamingHttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = attachment(download_name(dataset, "json"))
    response["Cache-Control"] = "no-store"
    return response


@public_read
@limit("export", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def export(request: HttpRequest) -> HttpResponse:
    """The dataset as a stream in the chosen format (the original API's /v1/export);
    ?tags= is the 2017 form (export_tags)."""
    if "tags" in request.GET:
        return export_tags(request)
    form = ExportForm(request.GET, original_default=True)
    if not form.is_valid():
        return form.api_error()
    chosen = FORMATS[form.cleaned_data["format"]]
    try:
        dataset = form.export(request)
    except TooCostly as error:
        return json_error(str(error), 400)
    # A HEAD request gets the headers without running the export.
    body = iter(()) if request.method == "HEAD" else chosen.render(dataset)
    response = StreamingHttpResponse(body, content_type=chosen.content_type)
    response["Content-Disposition"] = attachment(download_name(dataset, chosen.extension))
    response["Cache-Control"] = "no-store"
    return response


@public_read
@limit("export-count", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def export_count(request: HttpRequest) -> JsonResponse:
    """How many images an export with these parameters would hold: {"images": N}."""
    form = ExportForm(request.GET, original_default=True)
    if not form.is_valid():
        return form.api_error()
    try:
        return JsonResponse({"images": count_images(form.export(request))})
    except TooCostly as error:
        return json_error(str(error), 400)
    except TooSlow as error:
        return busy(str(error))


@public_read
@limit("export-quality", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def export_quality(request: HttpRequest) -> JsonResponse:
    """The quality report of an export with these parameters: quality.json of its archive.

    A release's is the one measured when it was cut; any other is measured now, on its
    pairs, under the count timeout. It defaults to settled pairs, as every archive does.
    """
    form = ExportForm(request.GET)
    if not form.is_valid():
        return form.api_error()
    try:
        dataset = form.export(request)
        if dataset.release_id is not None:
            return JsonResponse(form.cleaned_data["release"].quality)
        return JsonResponse(measure_quality(dataset))
    except TooCostly as error:
        return json_error(str(error), 400)
    except TooSlow as error:
        return busy(str(error))


def busy(reason: str) -> JsonResponse:
    response = json_error(reason, 503)
    response["Retry-After"] = "60"
    return response


class StatisticsForm(forms.Form):
    min_probability = forms.FloatField(
        required=False, min_value=0, max_value=1, error_messages=THRESHOLD_ERRORS
    )
    min_count = forms.IntegerField(
        required=False,
        min_value=0,
        error_messages={
            "invalid": "must be a whole number, 0 or more",
            "min_value": "must be a whole number, 0 or more",
        },
    )


@public_read
@limit("statistics", "EXPORT_RATE", methods=("GET", "HEAD"), by_address_only=True)
def validation_statistics(request: HttpRequest) -> JsonResponse:
    """Per label, the public pairs at or above min_probability: [{"label", "sublabel", "count"}]."""
    if unknown := sorted(set(request.GET) - set(StatisticsForm.base_fields)):
        return json_error(f"unknown parameter: {', '.join(unknown)[:200]}", 400)
    if empty := [name for name, value in request.GET.items() if not value.strip()]:
        return json_error(f"{empty[0]}: give a number, or leave the parameter out", 422)
    form = StatisticsForm(request.GET)
    if not form.is_valid():
        name, errors = next(iter(form.errors.items()))
        return json_error(f"{name}: {errors[0]}", 422)
    try:
        counts = validation_counts(
            min_probability=form.cleaned_data["min_probability"] or 0.0,
            min_count=form.cleaned_data["min_count"] or 0,
        )
    except TooSlow as error:
        return busy(str(error))
    return JsonResponse(counts, safe=False)


# --- The page -----------------------------------------------------------------------


def label_accessors() -> list[str]:
    """What the query field suggests: every label name and every part as dog.has='eye'."""
    labels = Label.objects.taggable().select_related("parent").order_by("parent__name", "name")
    return sorted(label.accessor for label in labels)


def with_added_label(data, how: str) -> dict:
    """The form data with the picked label joined to the query by | or &."""
    data = data.dict()
    term, query = data.pop("add_label", "").strip(), data.get("query", "").strip()
    if term and not query:
        data["query"] = term
    elif term and how == "and":
        data["query"] = f"({query}) & {term}" if "|" in query else f"{query} & {term}"
    elif term:
        data["query"] = f"{query} | {term}"
    return data


@require_safe
@limit("export-preview", "EXPORT_RATE", methods=("GET",), by_address_only=True)
def export_page(request: HttpRequest) -> HttpResponse:
    """Build a query, preview what matches, then download it in a chosen format."""
    data = request.GET
    if "add" in data:
        data = with_added_label(data, data["add"])
    form = ExportForm(data or None, initial={"format": "json"})
    settle = {
        "posterior": settings.VALIDATION_POSTERIOR,
        "voters": settings.SETTLE_MIN_VOTERS,
        "networks": settings.SETTLE_MIN_NETWORKS,
    }
    context = {
        "form": form,
        "accessors": label_accessors(),
        "formats": FORMATS,
        "settle": settle,
        "master_side": settings.IMAGE_MASTER_MAX_SIDE,
        "bytes_per_pixel": BYTES_PER_PIXEL,
        "shard_bytes": settings.EXPORT_SHARD_BYTES,
    }
    status = 200
    if form.is_bound and form.is_valid():
        try:
            dataset = form.export(request)
            summary = summarize(dataset, form.cleaned_data["format"])
            context.update(
                dataset=dataset,
                summary=summary,
                count=summary.images,
                labels=summary.labels[:PREVIEW_LABELS],
                images=first_images(dataset, PREVIEW_IMAGES) if summary.images else [],
            )
        except (TooCostly, TooSlow) as error:
            form.add_error("query", str(error))
            status = 400 if isinstance(error, TooCostly) else 503
        else:
            parameters = {
                "query": str(dataset.query),
                "min_probability": dataset.min_probability,
                "min_confidence": dataset.min_confidence,
                "status": dataset.status,
                "format": form.cleaned_data["format"],
            }
            if dataset.negatives:
                parameters["negatives"] = "true"
            if FORMATS[form.cleaned_data["format"]].images:
                parameters.update(layout=dataset.layout, size=dataset.size)
            elif form.cleaned_data["format"] in BUNDLES_IMAGES:
                parameters.update(size=dataset.size)
            if dataset.split:
                parameters.update(split="/".join(map(str, dataset.split)), seed=dataset.seed)
            if dataset.release_id is not None:  # a release carries its own query
                for name in ("query", "min_probability", "min_confidence"):
                    parameters.pop(name, None)
                parameters["release"] = dataset.release_slug
            context.update(
                chosen=FORMATS[form.cleaned_data["format"]],
                download_url=f"{reverse('exports:api-export')}?{urlencode(parameters)}",
            )
    return render(request, "exports/export.html", context, status=status)
