"""Staff for integration tests: a centre staffed for any number of customers, or to measure."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from arc.guards.staffing import BANDS, Category

# 表1's last band: with these qualified staff, any number of customers is compliant.
FULLY: Mapping[Category, int] = {c: BANDS[-1].minimum(c) for c in Category}


async def add_qualified(
    conn: asyncpg.Connection[asyncpg.Record], counts: Mapping[Category, int], *, tag: str = "T"
) -> None:
    """Insert qualified staff by category, straight into the table (not audited: a fixture)."""
    await conn.execute(
        """
        INSERT INTO staff (staff_id, name, category, certificate_no, certificate_expires,
                           exam_passed_on, trained_on, date_of_birth)
        SELECT gen_random_uuid(), 'fixture ' || c || ' ' || n, c,
               $3 || '-' || upper(left(c, 3)) || '-' || lpad(n::text, 6, '0'),
               DATE '2999-12-31', DATE '2000-01-01', DATE '2000-01-01', DATE '1980-01-01'
        FROM unnest($1::text[], $2::int[]) AS t(c, k), generate_series(1, k) AS n
        """,
        [c.value for c in counts],
        list(counts.values()),
        tag,
    )


async def staff_fully(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Staff the centre for any number of customers, so that onboarding is never refused."""
    await add_qualified(conn, FULLY, tag="FULL")
