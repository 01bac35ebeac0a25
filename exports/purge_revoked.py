#!/usr/bin/env python3
"""Remove revoked pictures from a local copy of an ImageMonkey release.

Needs nothing but Python 3.8+ (no Django, no packages). Every file under PATH
(an extracted release tar, or any folder of images) whose sha256 is listed in
the public revocation list is deleted; everything else is left as it is::

    python3 purge_revoked.py ./imagemonkey-release-2027-01
    python3 purge_revoked.py ./copy --revocations https://example.org/v1/revocations.jsonl
    python3 purge_revoked.py ./copy --revocations revocations.jsonl --dry-run

The list (one JSON object per line: {"uuid", "sha256": {"master", "display",
"thumb"}, "reason", "date"}) is read from a file or a URL. Files are matched by
their contents, so renamed or re-sorted copies are found too. The folder's
labels.csv and MANIFEST still name the removed files; the download of the
release (`/v1/export?release=…`) no longer does.

Exit status: 0 when the copy is clean, 1 on a bad list or path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path

DEFAULT_LIST = "http://127.0.0.1:8000/v1/revocations.jsonl"
CHUNK = 1024 * 1024


def read_hashes(lines: Iterable[str]) -> set[str]:
    """Every sha256 named by a revocation list, lower-case."""
    hashes: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            values = entry["sha256"].values()
        except (ValueError, KeyError, AttributeError, TypeError):
            raise ValueError(f"line {number} of the revocation list is not a revocation") from None
        hashes.update(str(value).lower() for value in values if value)
    return hashes


def load_list(source: str) -> set[str]:
    if source.startswith(("http://", "https://")):
        # Only http(s) reaches here: the scheme was checked just above.
        with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310
            return read_hashes(line.decode() for line in response)
    with open(source, encoding="utf-8") as handle:
        return read_hashes(handle)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def purge(root: Path, hashes: set[str], *, dry_run: bool = False) -> tuple[list[Path], int]:
    """Delete the files under `root` whose sha256 is in `hashes`: (removed, files kept)."""
    removed: list[Path] = []
    kept = 0
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            if sha256_of(path) in hashes:
                if not dry_run:
                    path.unlink()
                removed.append(path)
            else:
                kept += 1
    return removed, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="the local copy (a folder)")
    parser.add_argument(
        "--revocations",
        default=DEFAULT_LIST,
        help=f"revocations.jsonl, a file or a URL (default {DEFAULT_LIST})",
    )
    parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    options = parser.parse_args(argv)
    if not options.path.is_dir():
        print(f"{options.path}: not a folder", file=sys.stderr)
        return 1
    try:
        hashes = load_list(options.revocations)
    except (OSError, ValueError) as error:
        print(f"cannot read the revocation list: {error}", file=sys.stderr)
        return 1
    removed, kept = purge(options.path, hashes, dry_run=options.dry_run)
    verb = "would remove" if options.dry_run else "removed"
    for path in removed:
        print(f"{verb} {path}")
    print(f"{len(hashes)} revoked hashes; {verb} {len(removed)} file(s), {kept} kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
