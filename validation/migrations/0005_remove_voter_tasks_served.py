"""Forget Voter.tasks_served in Django's state; keep the column for one release.

deploy/update.sh migrates while the previous release still serves, and the
previous release writes tasks_served on every new voter and every task it
serves. So the column stays, with a database default that new inserts (which
no longer name it) get; a later release drops it (with IF EXISTS: databases
migrated during development already lost it).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("validation", "0004_voter_gold_by_label_alter_imagelabel_confidence"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField(model_name="voter", name="tasks_served")],
            database_operations=[
                migrations.RunSQL(
                    """
                    DO $$ BEGIN
                        IF EXISTS (SELECT 1 FROM information_schema.columns
                                   WHERE table_name = 'validation_voter'
                                     AND column_name = 'tasks_served') THEN
                            ALTER TABLE validation_voter ALTER COLUMN tasks_served SET DEFAULT 0;
                        END IF;
                    END $$
                    """,
                    """
                    DO $$ BEGIN
                        IF EXISTS (SELECT 1 FROM information_schema.columns
                                   WHERE table_name = 'validation_voter'
                                     AND column_name = 'tasks_served') THEN
                            ALTER TABLE validation_voter ALTER COLUMN tasks_served DROP DEFAULT;
                        ELSE
                            ALTER TABLE validation_voter
                                ADD COLUMN tasks_served integer NOT NULL DEFAULT 0
                                CHECK (tasks_served >= 0);
                            ALTER TABLE validation_voter ALTER COLUMN tasks_served DROP DEFAULT;
                        END IF;
                    END $$
                    """,
                )
            ],
        )
    ]
