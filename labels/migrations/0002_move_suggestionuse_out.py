"""SuggestionUse left labels for donations (an image waiting for a label is the image's
business); only Django's picture of the models changes, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("labels", "0001_initial"),
        ("donations", "0004_move_pairs_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SuggestionUse")],
            database_operations=[],
        ),
    ]
