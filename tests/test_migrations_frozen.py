r"""A released migration is never edited, renamed or removed.

tests/migrations.sha256 lists ``sha256  path`` (the format of ``sha256sum``) for
every released migration, ``*/migrations/0*.py``. A database that has applied a
migration never runs it again, so editing one changes nothing there and makes
new databases differ from old ones: change the schema with a new migration.

A migration that is not listed yet must be numbered after its app's released
ones. At release, add the new migrations (``git add`` them first) by running,
from the repository root:

    for f in $(git ls-files '*/migrations/0*.py'); do grep -q "  $f\$" tests/migrations.sha256 || sha256sum "$f" >> tests/migrations.sha256; done

It appends the migrations that are not listed and leaves the listed lines alone.
Never regenerate the whole file: that would bless an edit of a released migration.

These tests read files only: no database.
"""

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("migrations.sha256")
LINE = re.compile(r"([0-9a-f]{64}) [ *](\S+)")
NOT_SOURCE = {"var", "node_modules"}


def number(path: str) -> int:
    return int(re.match(r"\d+", Path(path).name).group())


@pytest.fixture(scope="module")
def released() -> dict[str, str]:
    """The manifest: path -> sha256 of the migration as released."""
    entries: dict[str, str] = {}
    for count, line in enumerate(MANIFEST.read_text().splitlines(), 1):
        if not line.strip():
            continue
        match = LINE.fullmatch(line)
        assert match, f"{MANIFEST.name}:{count} is not `sha256  path`: {line!r}"
        digest, path = match.groups()
        assert path not in entries, f"{MANIFEST.name}:{count} lists {path} a second time"
        entries[path] = digest
    assert entries, f"{MANIFEST.name} lists no migration"
    return entries


@pytest.fixture(scope="module")
def on_disk() -> list[str]:
    """Every migration file of the source tree, as the manifest names them."""
    found = []
    for folder in sorted(ROOT.iterdir()):
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in NOT_SOURCE:
            found += [
                path.relative_to(ROOT).as_posix() for path in folder.rglob("migrations/0*.py")
            ]
    return sorted(found)


def test_every_released_migration_is_unchanged(released):
    edited = [
        path
        for path, digest in released.items()
        if (ROOT / path).is_file()  # a missing one is test_no_released_migration_is_removed's
        and hashlib.sha256((ROOT / path).read_bytes()).hexdigest() != digest
    ]
    assert not edited, "\n".join(
        f"migration {path} was edited after release; add a new migration instead" for path in edited
    )


def test_no_released_migration_is_removed(released):
    removed = [path for path in released if not (ROOT / path).is_file()]
    assert not removed, "\n".join(
        f"migration {path} was removed or renamed after release; restore it "
        "(databases have applied it; later changes go into a new migration)"
        for path in removed
    )


def test_every_unreleased_migration_is_newer_than_the_released_ones(released, on_disk):
    last: dict[str, int] = {}
    for path in released:
        folder = str(Path(path).parent)
        last[folder] = max(last.get(folder, 0), number(path))
    misplaced = []
    for path in on_disk:
        folder = str(Path(path).parent)
        if path not in released and folder in last and number(path) <= last[folder]:
            misplaced.append(
                f"migration {path} is not in tests/{MANIFEST.name} but is numbered among the "
                f"released ones (the last released in {folder} is {last[folder]:04d}); "
                "number it after them, or restore the released file it replaces"
            )
    assert not misplaced, "\n".join(misplaced)


def test_the_search_for_migrations_finds_the_released_ones(released, on_disk):
    """Else the test above could pass by finding nothing."""
    missed = [path for path in released if (ROOT / path).is_file() and path not in on_disk]
    assert on_disk and not missed, f"the search for migrations misses {missed or 'them all'}"
