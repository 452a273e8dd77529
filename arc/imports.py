"""What a CSV import (accounts, staff) reports: all rows or none, every bad line named."""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from arc import audit
from arc.db import Connection


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one line of an import was refused."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ImportRejected(ValueError):
    """An import with bad rows: nothing was imported; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.line))
        count = len(self.problems)
        head = f"{count} bad row{'s' if count != 1 else ''}, nothing imported"
        super().__init__("\n".join([head, *map(str, self.problems)]))


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did."""

    added: int
    updated: int
    sha256: str  # of the file as given
    audit_id: uuid.UUID

    @property
    def total(self) -> int:
        """Rows in the file."""
        return self.added + self.updated


async def record_import(
    *,
    conn: Connection,
    actor: str,
    action: str,
    subject: str,
    source: str | None,
    sha256: str,
    columns: Sequence[str],
    added: int,
    updated: int,
) -> ImportResult:
    """Audit an import that was written, in the caller's transaction; return what it did."""
    audit_id = await audit.record(
        conn=conn,
        actor=actor,
        action=action,
        subject=subject,
        details={
            "source": source,
            "sha256": sha256,
            "columns": list(columns),
            "added": added,
            "updated": updated,
        },
    )
    return ImportResult(added=added, updated=updated, sha256=sha256, audit_id=audit_id)


class UnreadableFile(Exception):
    """The import file cannot be read as text; the message says why and what to try."""


def read_text(path: str, encoding: str) -> tuple[str, str]:
    """The text of ``path`` (``-``: standard input) and the SHA-256 of its bytes, for the audit."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as error:
        raise UnreadableFile(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode(encoding)
    except LookupError:
        raise UnreadableFile(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as error:
        raise UnreadableFile(
            f"{path} is not {encoding} text (byte {error.start}); a file saved by Chinese "
            "Excel may need --encoding gb18030"
        ) from None
    return text, hashlib.sha256(data).hexdigest()
