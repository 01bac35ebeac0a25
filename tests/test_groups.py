"""The groups moderators and curators: made by `manage.py make_groups`, used by the admin."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from donations.models import Image, ImageLabel
from labels.models import Label
from tests.helpers import make_image, make_label, make_pair

pytestmark = pytest.mark.django_db


def pending_image() -> Image:
    return make_image(status=Image.Status.PENDING)


def run_action(client: Client, model, action: str, objects, **extra):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    listing = client.get(url)
    assert listing.status_code == 200
    form = listing.context["action_form"]
    offered = [value for value, _ in form.fields["action"].choices] if form else []
    client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra})
    return offered, None


def staff_in(group: str) -> Client:
    """A staff account (not a superuser) whose only permissions come from `group`."""
    call_command("make_groups", verbosity=0)
    user = User.objects.create_user(f"{group}-member", password="x" * 20, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


def test_make_groups_is_idempotent_and_resets_what_was_changed_by_hand():
    call_command("make_groups", verbosity=0)
    moderators = Group.objects.get(name="moderators")
    count = moderators.permissions.count()
    moderators.permissions.clear()
    call_command("make_groups", verbosity=0)
    assert Group.objects.filter(name__in=["moderators", "curators"]).count() == 2
    assert moderators.permissions.count() == count > 0


def test_a_moderator_approves_pictures_and_freezes_pairs_but_cannot_curate_labels():
    moderator = staff_in("moderators")
    assert moderator.get(reverse("admin:donations_image_queue")).status_code == 200
    image = pending_image()
    offered, _ = run_action(moderator, Image, "approve", [image])
    assert "approve" in offered and Image.objects.get(pk=image.pk).status == Image.Status.PUBLIC
    pair = make_pair("dog")
    run_action(moderator, ImageLabel, "freeze_pairs", [pair])
    assert ImageLabel.objects.get(pk=pair.pk).frozen
    labels = reverse("admin:labels_label_changelist")
    assert moderator.get(labels).status_code == 403


def test_a_curator_merges_labels_but_cannot_approve_pictures():
    curator = staff_in("curators")
    source, target = make_label("doggie"), make_label("dog")
    offered, _ = run_action(curator, Label, "merge", [source], confirm="1", target=target.name)
    assert "merge" in offered and not Label.objects.filter(pk=source.pk).exists()
    assert curator.get(reverse("admin:donations_image_changelist")).status_code == 403
