from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Annotations"

    def ready(self) -> None:
        from validation import voting

        voting.pair_status_changed.connect(_pair_settled, dispatch_uid="annotations-pair-task")


def _pair_settled(sender, pair, status, **kwargs) -> None:
    """A pair was validated (or stopped being so): it becomes (or stops being) a task."""
    from . import tasks

    tasks.pair_status_changed(pair.pk, pair.label_id, status)
