"""Index public images by id (exports merge them with their pairs in order).

Built CONCURRENTLY: uploads and moderation keep writing images meanwhile.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("donations", "0002_initial"),
        ("validation", "0007_leaner_vote_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="image",
            index=models.Index(
                condition=models.Q(("status", "public")), fields=["id"], name="image_public_id"
            ),
        ),
    ]
