from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Annotations"

    def ready(self) -> None:
        from validation import merge, voting

        voting.pair_status_changed.connect(_pair_settled, dispatch_uid="annotations-pair-task")
        voting.voter_record_changed.connect(_voter_changed, dispatch_uid="annotations-reweigh")
        merge.pairs_relabelled.connect(_relabelled, dispatch_uid="annotations-relabelled")
        merge.pair_combined.connect(_combined, dispatch_uid="annotations-combined")


def _pair_settled(sender, pair, status, **kwargs) -> None:
    """A pair was validated (or stopped being so): it becomes (or stops being) a task."""
    from . import tasks

    tasks.pair_status_changed(pair.pk, pair.label_id, status)


def _voter_changed(sender, voter, **kwargs) -> None:
    """A voter's trust or gold record changed on a pair: their outline votes weigh anew."""
    from . import voting

    voting.recount_voter(voter)


def _relabelled(sender, pair_ids, label_id, **kwargs) -> None:
    from . import tasks

    tasks.pairs_relabelled(pair_ids, label_id)


def _combined(sender, pair, into, **kwargs) -> None:
    from . import tasks

    tasks.pair_combined(pair, into)
