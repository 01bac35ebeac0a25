"""Forms of the settings page: the name, an API token, deleting the account."""

from django import forms
from django.contrib.auth import get_user_model

from .models import ApiToken


class NameForm(forms.ModelForm):
    class Meta:
        model = get_user_model()
        fields = ["first_name", "last_name"]
        labels = {"first_name": "First name", "last_name": "Last name"}


class TokenForm(forms.Form):
    description = forms.CharField(
        max_length=200, required=False, help_text="What the token is for, e.g. “bulk upload”."
    )
    days = forms.IntegerField(label="Valid for (days)", min_value=1, max_value=730, initial=365)
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiToken.Scope.READ],
        error_messages={"required": "Choose at least one thing the token may do."},
    )

    def clean_description(self) -> str:
        text = self.cleaned_data["description"]
        if "\x00" in text:
            raise forms.ValidationError("The description holds a NUL character.")
        return text


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Your password, to make sure it is you.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password
