"""Tables on a terminal, where a Chinese character takes two columns."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence


def width(text: str) -> int:
    """The columns ``text`` takes on a terminal."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def print_table(
    rows: Sequence[Sequence[str]], notes: Mapping[int, Sequence[str]] | None = None
) -> None:
    """Print ``rows`` (the first is the header) in aligned columns, ``notes`` under theirs."""
    if not rows:
        return
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())
        for note in (notes or {}).get(index, ()):
            print(f"    - {note}")
