"""Each vote carries its weight: stored when it is cast (validation.voting), so that a
recount is one aggregate. Existing counted votes get the weight their voter's gold
record gives them today."""

from django.db import migrations, models

READ = """
SELECT DISTINCT v.voter_id, p.label_id, r.gold_correct, r.gold_wrong, r.gold_by_label,
       coalesce(u.is_staff, false)
FROM validation_vote v
JOIN validation_imagelabel p ON p.id = v.pair_id
JOIN validation_voter r ON r.id = v.voter_id
LEFT JOIN auth_user u ON u.id = r.user_id
WHERE v.counted
"""

WRITE = """
UPDATE validation_vote v SET weight = %s
FROM validation_imagelabel p
WHERE p.id = v.pair_id AND v.voter_id = %s AND p.label_id = %s AND v.counted
"""


def weigh_counted_votes(apps, schema_editor):
    import json

    from validation.rules import vote_weight_for

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(READ)
        rows = cursor.fetchall()
        for voter_id, label_id, correct, wrong, by_label, is_staff in rows:
            if isinstance(by_label, str):
                by_label = json.loads(by_label)
            record = (by_label or {}).get(f"label:{label_id}")
            weight = vote_weight_for(correct, wrong, record, is_staff)
            cursor.execute(WRITE, [weight, voter_id, label_id])


class Migration(migrations.Migration):
    dependencies = [
        ("validation", "0009_move_voter_and_pair_out"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AddField(
            model_name="vote",
            name="weight",
            field=models.FloatField(
                default=0.0,
                help_text=(
                    "The evidence this vote carries when counted "
                    "(validation.rules.vote_weight_for), set when it is cast and rewritten "
                    "when its voter's trust or gold record on the label changes."
                ),
            ),
        ),
        migrations.RunPython(weigh_counted_votes, migrations.RunPython.noop),
    ]
