"""Read the curated vocabulary in wordlists/ and load it into the taxonomy.

The format is documented in wordlists/README.md. Parsing checks the whole
file before anything is written, and every problem names its file and line.
Loading is idempotent: a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from .models import Label, Synonym, normalize_name


class WordlistError(Exception):
    pass


@dataclass
class Entry:
    name: str
    description: str = ""
    categories: list[str] = field(default_factory=list)
    sublabels: list[str] = field(default_factory=list)
    synonyms: list[str] = field(default_factory=list)
    plural: str = ""
    article: str = ""
    is_meta: bool = False
    annotatable: bool = True
    where: str = ""


ARTICLES = ("", "a", "an", "the", "-")
# [labels] are tagged and outlined; [scenes] are tagged but never outlined (a whole
# picture is the beach), though their parts are; [meta] labels are neither.
SECTIONS = ("[meta]", "[labels]", "[scenes]")


def _split(value: str) -> list[str]:
    return [normalize_name(v) for v in value.split(",") if v.strip()]


def parse_file(path: Path) -> list[Entry]:
    """Parse one file: `*.txt` with sections, or a plain one-name-per-line list."""
    entries: list[Entry] = []
    section = "labels"
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.name}:{number}"
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line in SECTIONS:
            section = line[1:-1]
            continue
        if line.startswith("["):
            raise WordlistError(
                f"{where}: unknown section {line!r} (use [meta], [labels] or [scenes])"
            )
        fields = [f.strip() for f in line.split("|")]
        if len(fields) > 7:
            raise WordlistError(f"{where}: too many fields ({len(fields)}; at most 7)")
        fields += [""] * (7 - len(fields))
        if fields[6] not in ARTICLES:
            raise WordlistError(f"{where}: the article is one of a, an, the or -: {fields[6]!r}")
        name = normalize_name(fields[0])
        if not name:
            raise WordlistError(f"{where}: the entry has no name")
        if "/" in name or "." in name or "'" in name:
            raise WordlistError(f"{where}: a name cannot contain '/', '.' or quotes: {name!r}")
        if len(name) > 100:
            raise WordlistError(f"{where}: the name is longer than 100 characters")
        entry = Entry(
            name=name,
            description=fields[1],
            categories=_split(fields[2]),
            sublabels=_split(fields[3]),
            synonyms=_split(fields[4]),
            plural=normalize_name(fields[5]),
            article=fields[6],
            is_meta=section == "meta",
            annotatable=section == "labels",
            where=where,
        )
        if entry.is_meta and entry.sublabels:
            raise WordlistError(f"{where}: a meta label cannot have sublabels")
        if len(set(entry.sublabels)) != len(entry.sublabels):
            raise WordlistError(f"{where}: {name!r} lists the same sublabel twice")
        entries.append(entry)
    return entries


def parse_wordlists(folder: Path) -> list[Entry]:
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise WordlistError(f"no *.txt files in {folder}")
    entries = [entry for path in files for entry in parse_file(path)]
    check(entries)
    return entries


def check(entries: list[Entry]) -> None:
    """Duplicate names, unknown categories and category cycles, each named by line."""
    by_name: dict[str, Entry] = {}
    for entry in entries:
        if entry.name in by_name:
            raise WordlistError(
                f"{entry.where}: {entry.name!r} is already defined at {by_name[entry.name].where}"
            )
        by_name[entry.name] = entry
    synonyms: dict[str, Entry] = {}
    for entry in entries:
        for synonym in entry.synonyms:
            if synonym in by_name:
                raise WordlistError(
                    f"{entry.where}: synonym {synonym!r} is also a label ({by_name[synonym].where})"
                )
            if synonym in synonyms:
                raise WordlistError(
                    f"{entry.where}: synonym {synonym!r} already belongs to "
                    f"{synonyms[synonym].name!r} ({synonyms[synonym].where})"
                )
            synonyms[synonym] = entry
        for category in entry.categories:
            if category not in by_name:
                raise WordlistError(
                    f"{entry.where}: category {category!r} of {entry.name!r} is not defined"
                )
    # Depth-first search for a cycle in the is-a graph.
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for category in by_name[name].categories:
            if state.get(category) == 1:
                cycle = " → ".join([*path[path.index(category) :], category])
                raise WordlistError(f"{by_name[name].where}: categories form a cycle: {cycle}")
            if category not in state:
                visit(category, [*path, category])
        state[name] = 2

    for entry in entries:
        if entry.name not in state:
            visit(entry.name, [entry.name])


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    missing_from_files: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


@transaction.atomic
def load(entries: list[Entry]) -> LoadReport:
    """Create what is new and update what changed; report, never delete, what is gone.

    A label's description, plural, meta flag and whether it is outlined follow the file. Categories,
    sublabels and synonyms from the file are added; ones curators added in the
    admin are kept.
    """
    report = LoadReport()
    labels: dict[str, Label] = {}
    for entry in entries:
        label = Label.objects.top_level().named(entry.name).first()
        if label is None:
            label = Label.objects.create(
                name=entry.name,
                description=entry.description,
                plural=entry.plural,
                article=entry.article,
                is_meta=entry.is_meta,
                annotatable=entry.annotatable,
            )
            report.created.append(entry.name)
        elif (
            label.description,
            label.plural,
            label.article,
            label.is_meta,
            label.annotatable,
        ) != (entry.description, entry.plural, entry.article, entry.is_meta, entry.annotatable):
            label.description = entry.description
            label.plural = entry.plural
            label.article = entry.article
            label.is_meta = entry.is_meta
            label.annotatable = entry.annotatable
            label.save(update_fields=["description", "plural", "article", "is_meta", "annotatable"])
            report.updated.append(entry.name)
        labels[entry.name] = label

    for entry in entries:
        label = labels[entry.name]
        current = set(label.categories.values_list("pk", flat=True))
        wanted = {labels[c].pk for c in entry.categories}
        if wanted - current:
            label.categories.add(*(wanted - current))
            if entry.name not in report.created and entry.name not in report.updated:
                report.updated.append(entry.name)
        existing_parts = {s.name: s for s in label.sublabels.all()}
        articles = {e.name: e.article for e in entries}  # a part is said as its own entry is
        for part in entry.sublabels:
            article = articles.get(part, "")
            if part not in existing_parts:
                Label.objects.create(name=part, parent=label, article=article)
                report.created.append(f"{entry.name}/{part}")
            elif existing_parts[part].article != article:
                Label.objects.filter(pk=existing_parts[part].pk).update(article=article)
        for synonym in entry.synonyms:
            found = Synonym.objects.filter(name__iexact=synonym).first()
            if found is None:
                Synonym.objects.create(name=synonym, label=label)
                report.created.append(f"synonym {synonym} → {entry.name}")
            elif found.label_id != label.pk:
                raise WordlistError(
                    f"{entry.where}: synonym {synonym!r} already points to {found.label} "
                    "in the database; change it in the admin first"
                )

    in_files = set(labels)
    report.missing_from_files = sorted(
        name
        for name in Label.objects.top_level().values_list("name", flat=True)
        if name not in in_files
    )
    return report
