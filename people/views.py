"""Accounts: the public profile, the settings page (name, API tokens), deleting an account.

Sign-up, sign-in, e-mail and passwords are django-allauth's pages (/accounts/…).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from donations.models import Image
from validation.statistics import public_numbers

from .forms import DeleteAccountForm, NameForm, TokenForm
from .http import is_storable_text
from .models import ApiToken, Voter

PROFILE_DONATIONS = 24


def profile(request: HttpRequest, username: str) -> HttpResponse:
    """GET /people/<username>: what anyone may know of a contributor."""
    user = None
    if is_storable_text(username):
        user = get_user_model().objects.filter(username__iexact=username, is_active=True).first()
    if user is None:
        raise Http404("No such contributor.")
    voter = Voter.objects.filter(user=user).first() or Voter()
    donations = Image.objects.public().donated_by(voter)
    return render(
        request,
        "people/profile.html",
        {
            "person": user,
            "numbers": public_numbers(voter),
            "donation_count": donations.count(),
            "donations": donations.order_by("-created")[:PROFILE_DONATIONS],
        },
    )


def _settings_page(request: HttpRequest, status: int = 200, **context) -> HttpResponse:
    tokens = ApiToken.with_last_seen(list(ApiToken.objects.of(request.user)))
    context.setdefault("name_form", NameForm(instance=request.user))
    context.setdefault("token_form", TokenForm())
    return render(request, "people/settings.html", {"tokens": tokens, **context}, status=status)


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    """GET /settings: name, e-mail and password (allauth's pages), API tokens, deletion."""
    return _settings_page(request)


@login_required
@require_POST
def change_name(request: HttpRequest) -> HttpResponse:
    form = NameForm(request.POST, instance=request.user)
    if not form.is_valid():
        return _settings_page(request, 400, name_form=form)
    form.save()
    messages.success(request, "Your name is saved.")
    return redirect("people:settings")


@login_required
@require_POST
def create_token(request: HttpRequest) -> HttpResponse:
    """POST /settings/tokens: a new API token, shown on this answer once and never again
    (so this POST answers with the page instead of a redirect: the secret is nowhere
    else to be shown from)."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, 400, token_form=form)
    token, plaintext = ApiToken.issue(
        request.user,
        form.cleaned_data["scopes"],
        form.cleaned_data["description"],
        form.cleaned_data["days"],
    )
    response = _settings_page(request, 201, new_token=token, plaintext=plaintext)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.revoke()
    messages.success(request, f"The token {token.shown} is revoked.")
    return redirect("people:settings")


@login_required
def delete_account(request: HttpRequest) -> HttpResponse:
    """GET/POST /settings/delete: the account, its e-mail addresses and tokens go; its
    votes stay as anonymous evidence (the voter is detached, not deleted) and its
    donations stay public, as their dedication says."""
    form = DeleteAccountForm(request.POST or None, user=request.user)
    if request.method != "POST" or not form.is_valid():
        status = 400 if request.method == "POST" else 200
        return render(request, "people/delete.html", {"form": form}, status=status)
    user = request.user
    with transaction.atomic():
        Voter.objects.filter(user=user).update(user=None)
        logout(request)
        user.delete()
    messages.success(request, "Your account is deleted. Your votes and donations stay, anonymous.")
    return redirect("home")
