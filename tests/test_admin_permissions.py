"""Every admin action checks the permission it needs: seeing a list is not moderating it."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from annotations import drawing
from annotations.models import Annotation
from donations.models import Image, ImageLabel
from labels.models import Label, LabelSuggestion
from people.models import Voter
from tests.helpers import cast, make_image, make_label, make_pair, make_voter
from validation.models import Alert, Vote

pytestmark = pytest.mark.django_db

APPS = ["donations", "labels", "validation", "people", "annotations"]


def staff_with(*codenames: str) -> Client:
    """A staff account holding exactly the given permissions ("app.codename")."""
    user = User.objects.create_user(f"staff{User.objects.count()}", password="x" * 20)
    user.is_staff = True
    user.save()
    for name in codenames:
        app, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer() -> Client:
    """Staff who may view every list of the site, and change nothing."""
    user = User.objects.create_user("viewer", password="x" * 20)
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_")
    )
    client = Client()
    client.force_login(user)
    return client


def run_action(client: Client, model, action: str, objects, **extra):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    listing = client.get(url)
    assert listing.status_code == 200
    form = listing.context["action_form"]  # None when no action is offered at all
    offered = [value for value, _ in form.fields["action"].choices] if form else []
    response = client.post(
        url, {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra}
    )
    return offered, response


def pending_image():
    return make_image(status=Image.Status.PENDING)


def gold_state(pair):
    pair.refresh_from_db()
    return (pair.is_gold, pair.gold_answer, pair.frozen, pair.status)


CASES = [
    # (model, action, make the object, read the state the action would change)
    (Image, "approve", pending_image, lambda i: Image.objects.get(pk=i.pk).status),
    (Image, "reject", pending_image, lambda i: Image.objects.get(pk=i.pk).status),
    (Image, "quarantine", make_image, lambda i: Image.objects.get(pk=i.pk).status),
    (
        Label,
        "deactivate",
        lambda: make_label("cat"),
        lambda label: Label.objects.get(pk=label.pk).active,
    ),
    (
        Label,
        "activate",
        lambda: make_label("cat", active=False),
        lambda label: Label.objects.get(pk=label.pk).active,
    ),
    (
        LabelSuggestion,
        "accept",
        lambda: LabelSuggestion.objects.record("wombat"),
        lambda s: LabelSuggestion.objects.get(pk=s.pk).status,
    ),
    (
        LabelSuggestion,
        "reject",
        lambda: LabelSuggestion.objects.record("wombat"),
        lambda s: LabelSuggestion.objects.get(pk=s.pk).status,
    ),
    (ImageLabel, "gold_yes", make_pair, gold_state),
    (ImageLabel, "gold_no", make_pair, gold_state),
    (ImageLabel, "not_gold", lambda: make_pair(is_gold=True, gold_answer=True), gold_state),
    (ImageLabel, "freeze_pairs", make_pair, gold_state),
    (ImageLabel, "unfreeze_pairs", lambda: make_pair(frozen=True), gold_state),
    (
        ImageLabel,
        "reopen_pairs",
        lambda: make_pair(status=ImageLabel.Status.VALIDATED),
        gold_state,
    ),
]


def an_outline(**fields):
    pair = make_pair(status=ImageLabel.Status.VALIDATED)
    pair = ImageLabel.objects.select_related("image", "label__parent").get(pk=pair.pk)
    rect = {"type": "rect", "left": 1, "top": 1, "width": 10, "height": 10}
    annotation = drawing.draw(pair, make_voter(), [rect]).annotation
    Annotation.objects.filter(pk=annotation.pk).update(**fields)
    return annotation


def outline_state(annotation):
    annotation.refresh_from_db()
    return (annotation.is_gold, annotation.gold_answer, annotation.status)


CASES += [
    (Label, "make_annotatable", lambda: make_label("cat", annotatable=False),
     lambda label: Label.objects.get(pk=label.pk).annotatable),
    (Label, "make_not_annotatable", lambda: make_label("cat"),
     lambda label: Label.objects.get(pk=label.pk).annotatable),
    (Annotation, "gold_yes", an_outline, outline_state),
    (Annotation, "gold_no", an_outline, outline_state),
    (Annotation, "not_gold", lambda: an_outline(is_gold=True, gold_answer=True), outline_state),
]  # fmt: skip


def voter_with_a_vote():
    voter = make_voter()
    cast(make_pair(), voter, True)
    return voter


def alert_with_a_vote():
    voter = make_voter()
    vote = cast(make_pair(), voter, True)
    return Alert.objects.create(
        kind=Alert.Kind.BURST,
        pair=vote.pair,
        label=vote.pair.label,
        ip_prefix=vote.ip_prefix or "",
        message="burst",
        details={"votes": [vote.pk]},
    )


def alert_state(alert):
    alert.refresh_from_db()
    alert.pair.refresh_from_db()
    banned = Voter.objects.filter(banned=True).count()
    return (alert.resolved, banned, alert.pair.frozen, Vote.objects.filter(counted=True).count())


CASES += [
    (Voter, "discard", voter_with_a_vote, lambda v: Voter.objects.get(pk=v.pk).banned),
    (Alert, "freeze_pair", alert_with_a_vote, alert_state),
    (Alert, "discard_voters", alert_with_a_vote, alert_state),
    (Alert, "release_votes", alert_with_a_vote, alert_state),
    (Alert, "resolve", alert_with_a_vote, alert_state),
]


@pytest.mark.parametrize(
    "model, action, make, state", CASES, ids=[f"{c[0].__name__}.{c[1]}" for c in CASES]
)
def test_a_view_only_account_is_refused_every_action(viewer, model, action, make, state):
    target = make()
    before = state(target)
    offered, response = run_action(viewer, model, action, [target])
    assert action not in offered
    assert response.status_code in (200, 302, 403)
    assert state(target) == before


def test_a_view_only_account_cannot_merge_labels_through_the_confirmation_form(viewer):
    source, target = make_label("doggie"), make_label("dog")
    make_pair(source)
    _, response = run_action(viewer, Label, "merge", [source], confirm="1", target=target.name)
    assert Label.objects.filter(pk=source.pk).exists()
    assert ImageLabel.objects.filter(label=source).count() == 1


def test_a_view_only_account_cannot_decide_from_the_moderation_queue(viewer):
    image = pending_image()
    response = viewer.post(
        reverse("admin:donations_image_queue"),
        {"decision": "approve", "selected": [str(image.uuid)]},
    )
    assert response.status_code in (302, 403)
    assert Image.objects.get(pk=image.pk).status == Image.Status.PENDING


def test_a_moderator_with_the_change_permission_approves():
    moderator = staff_with("donations.view_image", "donations.change_image")
    image = pending_image()
    offered, _ = run_action(moderator, Image, "approve", [image])
    assert "approve" in offered
    assert Image.objects.get(pk=image.pk).status == Image.Status.PUBLIC


def test_changing_labels_is_not_enough_to_merge_them_away():
    curator = staff_with("labels.view_label", "labels.change_label")
    source, target = make_label("doggie"), make_label("dog")
    offered, _ = run_action(curator, Label, "merge", [source], confirm="1", target=target.name)
    assert "merge" not in offered and "deactivate" in offered
    assert Label.objects.filter(pk=source.pk).exists()


def test_discarding_an_alerts_voters_takes_the_right_to_change_voters():
    moderator = staff_with("validation.view_alert", "validation.change_alert")
    alert = alert_with_a_vote()
    offered, _ = run_action(moderator, Alert, "discard_voters", [alert])
    assert "discard_voters" not in offered and "resolve" in offered
    assert not Voter.objects.filter(banned=True).exists()
    moderator = staff_with(
        "validation.view_alert", "validation.change_alert", "people.change_voter"
    )
    offered, _ = run_action(moderator, Alert, "discard_voters", [alert])
    assert "discard_voters" in offered
    assert Voter.objects.filter(banned=True).count() == 1


def test_the_alert_page_shows_labels_with_braces_in_their_names():
    superuser = User.objects.create_superuser("root", "r@example.org", "x" * 20)
    client = Client()
    client.force_login(superuser)
    voter = make_voter()
    vote = cast(make_pair("a{b}c"), voter, True)
    alert = Alert.objects.create(
        kind=Alert.Kind.BURST, pair=vote.pair, label=vote.pair.label, message="burst"
    )
    response = client.get(reverse("admin:validation_alert_change", args=[alert.pk]))
    assert response.status_code == 200
    assert b"a{b}c" in response.content


def test_a_moderator_with_the_change_permission_makes_gold_outlines():
    annotation = an_outline()
    client = staff_with("annotations.view_annotation", "annotations.change_annotation")
    offered, response = run_action(client, Annotation, "gold_no", [annotation])
    assert "gold_no" in offered and response.status_code == 302
    assert outline_state(annotation) == (True, False, Annotation.Status.OPEN), (
        "the crowd settles it"
    )
