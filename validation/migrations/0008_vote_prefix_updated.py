"""Bound the burst check by its window: index votes by (ip_prefix, updated).

Built CONCURRENTLY, the new index before the old one goes: votes keep coming
in meanwhile, and the burst check always has an index.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("validation", "0007_leaner_vote_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="vote",
            index=models.Index(fields=["ip_prefix", "updated"], name="vote_prefix_updated"),
        ),
        RemoveIndexConcurrently(model_name="vote", name="vote_prefix_created"),
    ]
