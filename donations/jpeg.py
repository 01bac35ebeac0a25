"""Read how a JPEG is built, without decoding it: does it have more scans than we allow?

A progressive JPEG is decoded scan by scan, and each scan passes over every block
of the picture, however few bytes it takes: 10,000 scans of a few dozen bytes make
an 844 KB file of 48 megapixels that keeps libjpeg busy for minutes. Real
progressive JPEGs have about 10 scans (libjpeg's default script) and rarely more
than 20. Counting the SOS markers first refuses such a file in a millisecond.

The walk follows libjpeg's own reading, so that what it counts is what the decoder
would decode: between segments, anything up to the next 0xFF followed by a marker
code is skipped (fill bytes and garbage included); a segment's 2-byte length is
skipped as a whole; inside the entropy-coded data of a scan, 0xFF 0x00 is a stuffed
data byte and RST0–RST7 belong to the scan, and any other marker ends it.

Pure Python over bytes: no decoder runs, so it is safe in the web process.
"""

from __future__ import annotations

import re

_EOI = 0xD9
_SOS = 0xDA
_WITHOUT_LENGTH = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, RST0..RST7
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xff]")
_END_OF_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS_BYTES = b"\xff\xda"
# No photo has this many segments (a 20 MB file of 64 KB metadata chunks has 320);
# the bound keeps the walk of a hostile file in the milliseconds.
MAX_SEGMENTS = 10_000


def too_many_scans(data: bytes, limit: int) -> bool:
    """True when the first picture of ``data`` has more than ``limit`` scans.

    Also true for a file with more than MAX_SEGMENTS segments that might hide them.
    Every scan starts with the bytes FF DA, which entropy-coded data never holds
    (a data byte 0xFF is written FF 00): a file with at most ``limit`` of them
    needs no walk at all.
    """
    if data.count(_SOS_BYTES) <= limit:
        return False
    scans = 0
    position = 2  # after SOI
    for _segment in range(MAX_SEGMENTS):
        found = _NEXT_MARKER.search(data, position)
        if found is None:
            return False  # the file ends; the decoder will say whether that is fine
        marker, position = data[found.end() - 1], found.end()
        if marker == _EOI:
            return False
        if marker in _WITHOUT_LENGTH:
            continue
        # libjpeg skips a length below 2 as if it were 2.
        position += max(int.from_bytes(data[position : position + 2], "big"), 2)
        if marker == _SOS:
            scans += 1
            if scans > limit:
                return True
            found = _END_OF_SCAN.search(data, position)
            if found is None:
                return False
            position = found.start()
    return True
