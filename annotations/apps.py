from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Annotations"

    def ready(self) -> None:
        from validation import voting

        voting.pair_status_changed.connect(_pair_settled, dispatch_uid="annotations-pair-task")
        voting.voter_record_changed.connect(_voter_changed, dispatch_uid="annotations-reweigh")


def _pair_settled(sender, pair, status, **kwargs) -> None:
    """A pair was validated (or stopped being so): it becomes (or stops being) a task."""
    from . import tasks

    tasks.pair_status_changed(pair.pk, pair.label_id, status)


def _voter_changed(sender, voter, **kwargs) -> None:
    """A voter's trust or gold record changed on a pair: their outline votes weigh anew."""
    from . import voting

    voting.recount_voter(voter)
