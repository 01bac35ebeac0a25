"""Make a new site alive: public-domain photos, labels, gold, and a demo moderator.

Run by `make demo` (or `DEMO=1 make run`). Idempotent: a second run changes nothing and
prints the same moderator password, kept in DATA_DIR/demo_moderator_password (mode 600).
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from people.models import Voter
from validation import demo

USERNAME = "demo-moderator"
# What a moderator needs (README, "Moderation takes permissions, not a staff flag").
PERMISSIONS = [
    ("donations", "view_image"),
    ("donations", "change_image"),
    ("donations", "view_imagelabel"),
    ("donations", "change_imagelabel"),
    ("donations", "view_report"),
    ("labels", "view_label"),
    ("labels", "view_labelsuggestion"),
    ("validation", "view_alert"),
    ("validation", "change_alert"),
]


class Command(BaseCommand):
    help = "Load public-domain demo photos with labels and gold, and a demo moderator."

    def handle(self, *args, **options):
        user, password = self.moderator()
        try:
            counts = demo.load(Voter.objects.get_or_create(user=user)[0])
        except demo.DemoUnavailable as unavailable:
            raise CommandError(str(unavailable)) from None
        self.stdout.write(
            f"==> Demo: {len(demo.SAMPLES)} public-domain photos ({counts['images']} new, "
            f"{counts['approved']} approved now), {counts['pairs']} new questions, "
            f"{counts['answers']} known answers given now"
        )
        self.stdout.write(
            f"==> Demo moderator: sign in at /admin/ as {USERNAME} with the password {password}"
        )

    @transaction.atomic
    def moderator(self):
        """The demo moderator, created once, and its password (kept under DATA_DIR)."""
        path = settings.DATA_DIR / "demo_moderator_password"
        password = path.read_text().strip() if path.exists() else ""
        User = get_user_model()
        user = User.objects.filter(username=USERNAME).first()
        if user is not None and password and user.check_password(password):
            return user, password
        password = secrets.token_urlsafe(12)
        if user is None:
            user = User(username=USERNAME, is_staff=True)
        user.set_password(password)
        user.save()
        for app, codename in PERMISSIONS:
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app, codename=codename)
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(password + "\n")
        return user, password
