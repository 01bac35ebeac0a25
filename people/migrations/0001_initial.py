"""Voter moves from validation to people: the table, its rows and its permissions stay.

Only Django's picture of the models changes (SeparateDatabaseAndState); the
table keeps its name, validation_voter. The content type is renamed so that
the admin permissions granted on voters follow them.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def rename_content_type(apps, schema_editor, old_app, new_app, model):
    content_types = apps.get_model("contenttypes", "ContentType").objects
    old = content_types.filter(app_label=old_app, model=model)
    if not old.exists():
        return
    content_types.filter(app_label=new_app, model=model).delete()
    old.update(app_label=new_app)


def forwards(apps, schema_editor):
    rename_content_type(apps, schema_editor, "validation", "people", "voter")


def backwards(apps, schema_editor):
    rename_content_type(apps, schema_editor, "people", "validation", "voter")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        ("validation", "0008_vote_prefix_updated"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Voter",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "token_sha256",
                            models.CharField(blank=True, max_length=64, null=True, unique=True),
                        ),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        ("first_ip_prefix", models.CharField(blank=True, max_length=50)),
                        ("trusted", models.BooleanField(default=False)),
                        ("gold_correct", models.PositiveIntegerField(default=0)),
                        ("gold_wrong", models.PositiveIntegerField(default=0)),
                        (
                            "gold_by_label",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text='Gold answers per label: {"label:<id>": [right, wrong]}.',
                            ),
                        ),
                        (
                            "banned",
                            models.BooleanField(
                                default=False,
                                help_text="All of this voter's votes carry no weight.",
                            ),
                        ),
                        (
                            "user",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="voter",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "validation_voter",
                        "indexes": [models.Index(fields=["trusted"], name="voter_trusted")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
