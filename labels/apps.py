from django.apps import AppConfig


class LabelsConfig(AppConfig):
    name = "labels"
    verbose_name = "Label taxonomy"

    def ready(self) -> None:
        from . import lookup  # noqa: F401 - connects the signals that keep its map fresh
