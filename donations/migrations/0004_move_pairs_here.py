"""The image–label pair and the suggestion uses move into donations; donors and reporters
are people's voters now.

Only Django's picture of the models changes (SeparateDatabaseAndState): the
tables keep their names (validation_imagelabel, labels_suggestionuse), with
their rows, indexes and constraints. The content types are renamed so that
admin permissions follow.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import donations.models


def rename_content_type(apps, old_app, new_app, model):
    content_types = apps.get_model("contenttypes", "ContentType").objects
    old = content_types.filter(app_label=old_app, model=model)
    if not old.exists():
        return
    content_types.filter(app_label=new_app, model=model).delete()
    old.update(app_label=new_app)


MOVED = [("validation", "imagelabel"), ("labels", "suggestionuse")]


def forwards(apps, schema_editor):
    for app, model in MOVED:
        rename_content_type(apps, app, "donations", model)


def backwards(apps, schema_editor):
    for app, model in MOVED:
        rename_content_type(apps, "donations", app, model)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("donations", "0003_image_public_id"),
        ("labels", "0001_initial"),
        ("people", "0001_initial"),
        ("validation", "0008_vote_prefix_updated"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.AlterField(
            model_name='image',
            name='donor',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='donations', to='people.voter'),
        ),
        migrations.AlterField(
            model_name='report',
            name='reporter',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reports', to='people.voter'),
        ),
        migrations.CreateModel(
            name='ImageLabel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('num_yes', models.PositiveIntegerField(default=0)),
                ('num_no', models.PositiveIntegerField(default=0)),
                ('probability', models.FloatField(default=0.0)),
                ('confidence', models.FloatField(default=0.0, help_text="Probability that the label is present, from the counted votes weighted by each voter's gold accuracy (0 until a vote carries weight).")),
                ('status', models.CharField(choices=[('open', 'Open'), ('validated', 'Validated'), ('rejected', 'Rejected')], default='open', max_length=10)),
                ('frozen', models.BooleanField(default=False, help_text='Frozen pairs take no more votes.')),
                ('servable', models.BooleanField(default=False)),
                ('settled_as', models.CharField(blank=True, help_text='The outcome this pair last settled on (for flip alerts).', max_length=10)),
                ('settle_after', models.PositiveIntegerField(default=0, help_text='A reopened pair settles only once it has this many counted votes.')),
                ('is_gold', models.BooleanField(default=False)),
                ('gold_answer', models.BooleanField(blank=True, null=True)),
                ('random_key', models.IntegerField(default=donations.models.new_random_key)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated', models.DateTimeField(default=django.utils.timezone.now)),
                ('added_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='people.voter')),
                ('image', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='pairs', to='donations.image')),
                ('label', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='pairs', to='labels.label')),
            ],
            options={
                'db_table': 'validation_imagelabel',
                'indexes': [models.Index(fields=['label', 'status'], name='pair_label_status'), models.Index(condition=models.Q(('servable', True)), fields=['random_key'], name='pair_servable_random'), models.Index(condition=models.Q(('servable', True)), fields=['label', 'random_key'], name='pair_servable_label_random'), models.Index(condition=models.Q(('is_gold', True)), fields=['random_key'], name='pair_gold_random')],
                'constraints': [models.UniqueConstraint(fields=('image', 'label'), name='one_pair_per_image_and_label', violation_error_message='This picture already has this label.'), models.CheckConstraint(condition=models.Q(('status__in', ['open', 'validated', 'rejected'])), name='pair_status_valid'), models.CheckConstraint(condition=models.Q(('is_gold', False), ('gold_answer__isnull', False), _connector='OR'), name='gold_pair_has_answer', violation_error_message='A gold pair needs its known answer.'), models.CheckConstraint(condition=models.Q(('probability__gte', 0), ('probability__lte', 1)), name='probability_in_range')],
            },
        ),
        migrations.CreateModel(
            name='SuggestionUse',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('image', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='suggestion_uses', to='donations.image')),
                ('suggestion', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='uses', to='labels.labelsuggestion')),
            ],
            options={
                'db_table': 'labels_suggestionuse',
                'constraints': [models.UniqueConstraint(fields=('suggestion', 'image'), name='one_use_per_image')],
            },
        ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
