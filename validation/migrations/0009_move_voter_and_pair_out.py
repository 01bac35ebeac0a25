"""Voter and ImageLabel left validation (for people and donations): only Django's picture
of the models changes; the tables, and the foreign keys of votes and alerts, stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("donations", "0004_move_pairs_here"),
        ("people", "0001_initial"),
        ("validation", "0008_vote_prefix_updated"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.AlterField(
            model_name='alert',
            name='pair',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='donations.imagelabel'),
        ),
        migrations.AlterField(
            model_name='vote',
            name='pair',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='votes', to='donations.imagelabel'),
        ),
        migrations.RemoveField(
            model_name='voter',
            name='user',
        ),
        migrations.AlterField(
            model_name='vote',
            name='voter',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='votes', to='people.voter'),
        ),
        migrations.DeleteModel(
            name='ImageLabel',
        ),
        migrations.DeleteModel(
            name='Voter',
        ),
            ],
            database_operations=[],
        ),
    ]
