from django import forms
from django.conf import settings

from labels.models import Label, normalize_name

from .models import Report


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """One or more files; the bytes decide what they are (see donations.decoding)."""

    widget = MultipleFileInput

    def __init__(self, *args, **kwargs):
        # An empty file is not the whole form's fault: it is refused by name, with the others
        # donated (ingestion says why).
        super().__init__(*args, allow_empty_file=True, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if not files:
            raise forms.ValidationError("Choose at least one picture to donate.")
        if len(files) > settings.MAX_FILES_PER_DONATION:
            raise forms.ValidationError(
                f"You chose {len(files)} files; please donate at most "
                f"{settings.MAX_FILES_PER_DONATION} at a time."
            )
        return [super(MultipleImageField, self).clean(f, initial) for f in files]


def parse_labels(text: str) -> tuple[list[Label], list[str]]:
    """Split comma-separated text into known labels and unknown words (suggestions)."""
    labels: dict[int, Label] = {}
    unknown: list[str] = []
    for piece in text.split(","):
        name = normalize_name(piece)
        if not name:
            continue
        if len(name) > 100:
            raise forms.ValidationError("A label can be at most 100 characters long.")
        label = Label.objects.resolve(name)
        if label is not None:
            labels[label.pk] = label
        elif name not in unknown:
            unknown.append(name)
    if len(labels) + len(unknown) > 20:
        raise forms.ValidationError("Please give at most 20 labels per donation.")
    return list(labels.values()), unknown


class DonationForm(forms.Form):
    images = MultipleImageField(
        label="Pictures",
        help_text=f"JPEG, PNG or WebP; up to {settings.MAX_FILES_PER_DONATION} at a time.",
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    labels = forms.CharField(
        required=False,
        max_length=2000,
        label="What is in the pictures? (optional)",
        help_text="Separate labels with commas, e.g. “dog, ball”. Words we do not know yet "
        "are sent to our curators as suggestions.",
        widget=forms.TextInput(attrs={"list": "label-names", "autocomplete": "off"}),
    )
    add_sublabels = forms.BooleanField(
        required=False,
        label="Also ask about their parts",
        help_text="For example, for “dog” also ask voters about its eyes, ears and tail, "
        "once they have confirmed there is a dog.",
    )
    cc0 = forms.BooleanField(
        label="I took these photos, and I dedicate them to the public domain (CC0 1.0).",
        error_messages={
            "required": "Please confirm that the photos are yours to give and that you "
            "dedicate them to the public domain."
        },
    )

    def clean_labels(self):
        self.labels_found, self.suggestions = parse_labels(self.cleaned_data["labels"])
        return self.cleaned_data["labels"]


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        choices=Report.Reason.choices, widget=forms.RadioSelect, label="What is wrong?"
    )
    text = forms.CharField(
        required=False,
        max_length=1000,
        label="Anything else we should know? (optional)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") == Report.Reason.OTHER and not cleaned.get("text", "").strip():
            self.add_error("text", "Please tell us what is wrong with this picture.")
        return cleaned
