"""Label names resolved once per process, for the hot paths (a vote names its label).

`resolve(text)` answers what `Label.objects.resolve(text)` answers, from a
small in-process map after the first time. Saving or deleting a label or a
synonym, and the admin's activate/deactivate actions, forget the map of the
process that made the change (at once and at the commit); other processes
forget their entries after TTL seconds, so a rename or a merge made in the
admin reaches every gunicorn worker within a minute. Unknown names are not
remembered: a label added a moment ago is found at once everywhere. When a
vote is cast the database checks again that its label may be used (active,
not a category, with an active parent).

`label_datalist()` is the <datalist> of every typeable name that label fields suggest
from, kept the same way: two queries and a thousand options rendered once a minute per
process instead of on every page that has a label field (about 13 ms each time).
"""

from __future__ import annotations

import re
import threading
import time

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .models import Label, Synonym, normalize_name

TTL = 60.0  # seconds
MAX_ENTRIES = 10_000  # normalised names of labels that exist: a few thousand at most
LONGEST = 2 * 100 + 1 + 40  # 'parent/part' of two 100-character names, and some spaces

# A label name must hold something besides these (the OpenAPI description says the same).
BLANKS = re.compile(r"[ \t\n\r\f\v]+")

_lock = threading.Lock()
_known: dict[str, tuple[float, Label]] = {}
_datalist: list[tuple[float, SafeString]] = []  # at most one: (until, html)


def resolve(text: str) -> Label | None:
    """The taggable label `text` names (with its parent loaded), or None."""
    if len(text) > LONGEST:
        return None  # no label is named that long: never normalised, never remembered
    key = normalize_name(text)
    now = time.monotonic()
    hit = _known.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    label = Label.objects.resolve(key)
    if label is None:
        return None
    if label.parent_id is not None:
        label.parent  # noqa: B018 - load it now: the cached label is read, never queried
    with _lock:
        if len(_known) >= MAX_ENTRIES:
            _known.clear()
        _known[key] = (now + TTL, label)
    return label


def label_datalist() -> SafeString:
    """`<datalist id="label-names">` with an option per typeable name (names are escaped)."""
    now = time.monotonic()
    if _datalist and _datalist[0][0] > now:
        return _datalist[0][1]
    options = format_html_join(
        "", '<option value="{}"></option>', ((name,) for name in Label.objects.typeable_names())
    )
    html = format_html('<datalist id="label-names">{}</datalist>', options)
    with _lock:
        _datalist[:] = [(now + TTL, html)]
    return html


def forget(**_kwargs) -> None:
    """Forget every name now, and again when the current transaction commits.

    Now, for this thread's next lookups; at the commit, because another thread
    may have looked the old row up again in between.
    """
    clear()
    transaction.on_commit(clear)


def clear() -> None:
    """Forget every name now."""
    with _lock:
        _known.clear()
        _datalist.clear()


for _model in (Label, Synonym):
    post_save.connect(forget, sender=_model, dispatch_uid=f"labels.lookup.{_model.__name__}.save")
    post_delete.connect(
        forget, sender=_model, dispatch_uid=f"labels.lookup.{_model.__name__}.delete"
    )


# --- how the API names a (sub)label: {"label": "dog", "sublabel": "eye"} -----------


def resolve_pair_label(body: dict) -> Label:
    """The (sub)label named by {"label", "sublabel"}; ValueError when it names nothing."""
    name = body.get("label")
    sublabel = body.get("sublabel") or ""
    if not isinstance(name, str) or not BLANKS.sub("", name):
        raise ValueError('give the label, e.g. {"label": "dog"}')
    if not isinstance(sublabel, str):
        raise ValueError("sublabel must be a string")
    text = f"{name}/{sublabel}" if sublabel.strip() else name
    label = resolve(text)
    if label is None:
        raise LookupError(f"unknown label: {text[:100]}")
    return label


def label_json(label: Label) -> dict:
    return {
        "label": label.parent.name if label.parent_id else label.name,
        "sublabel": label.name if label.parent_id else "",
    }
