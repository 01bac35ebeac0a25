"""Merging one label into another: its pairs and votes move, then the taxonomy follows."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

from donations import pairs as pair_rules
from donations.models import ImageLabel
from labels.models import Label

from . import voting

# Sent inside a merge's transaction, for the apps above that keep rows of their own per
# pair (annotations): `pair_ids` now have the label `label_id`; `pair` is about to be
# combined into `into` (the target label's pair of the same picture) and deleted.
pairs_relabelled = Signal()
pair_combined = Signal()


@transaction.atomic
def merge_labels(source: Label, target: Label) -> dict[str, int]:
    """Move everything that uses `source` onto `target`, then delete `source`.

    Pairs on the same image are combined: a voter who voted on both keeps the
    vote on the target pair, and the counts are recomputed from the votes.
    Sublabels move under the target (and merge with its sublabels of the same
    name); the source's name and synonyms become synonyms of the target.
    """
    source.check_merge_into(target)
    moved = {"pairs_moved": 0, "pairs_combined": 0, "votes_moved": 0, "votes_dropped": 0}
    for pair in ImageLabel.objects.filter(label=source).select_for_update():
        existing = ImageLabel.objects.filter(image_id=pair.image_id, label=target).first()
        if existing is None:
            ImageLabel.objects.filter(pk=pair.pk).update(label=target)
            pairs_relabelled.send(sender=ImageLabel, pair_ids=[pair.pk], label_id=target.pk)
            moved["pairs_moved"] += 1
            continue
        dropped = pair.votes.filter(voter__in=existing.votes.values("voter")).delete()[0]
        moved["votes_dropped"] += dropped
        moved["votes_moved"] += pair.votes.update(pair=existing)
        moved["pairs_combined"] += 1
        pair_combined.send(sender=ImageLabel, pair=pair, into=existing)
        pair.delete()
        voting.recount(existing)

    for sub in list(source.sublabels.all()):
        twin = target.sublabels.named(sub.name).first()
        if twin is not None:
            for key, value in merge_labels(sub, twin).items():
                moved[key] += value
        else:
            sub.move_under(target)
    source.dissolve_into(target)
    pair_rules.sync_servable_for_labels([target.pk])
    return moved
