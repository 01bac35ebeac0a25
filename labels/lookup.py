"""Label names resolved once per process, for the hot paths (a vote names its label).

`resolve(text)` answers what `Label.objects.resolve(text)` answers, from a
small in-process map after the first time. Saving or deleting a label or a
synonym in this process forgets the map at once; other processes forget
their entries after TTL seconds, so a rename or a merge made in the admin
reaches every gunicorn worker within a minute. Unknown names are not
remembered: a label added a moment ago is found at once everywhere. The
database still checks that the label is active when a vote is cast.
"""

from __future__ import annotations

import threading
import time

from django.db.models.signals import post_delete, post_save

from .models import Label, Synonym, normalize_name

TTL = 60.0  # seconds
MAX_ENTRIES = 10_000

_lock = threading.Lock()
_known: dict[str, tuple[float, Label]] = {}


def resolve(text: str) -> Label | None:
    """The taggable label `text` names (with its parent loaded), or None."""
    now = time.monotonic()
    hit = _known.get(text)  # the text as sent, then as normalised
    if hit is None or hit[0] <= now:
        hit = _known.get(normalize_name(text))
    if hit is not None and hit[0] > now:
        return hit[1]
    key = normalize_name(text)
    label = Label.objects.resolve(key)
    if label is None:
        return None
    if label.parent_id is not None:
        label.parent  # noqa: B018 - load it now: the cached label is read, never queried
    with _lock:
        if len(_known) >= MAX_ENTRIES:
            _known.clear()
        _known[key] = _known[text] = (now + TTL, label)
    return label


def forget(**_kwargs) -> None:
    with _lock:
        _known.clear()


for _model in (Label, Synonym):
    post_save.connect(forget, sender=_model, dispatch_uid=f"labels.lookup.{_model.__name__}.save")
    post_delete.connect(
        forget, sender=_model, dispatch_uid=f"labels.lookup.{_model.__name__}.delete"
    )
