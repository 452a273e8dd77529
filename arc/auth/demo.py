"""Demonstration console logins for ``arc up --demo``: one user per role that logs in.

Passwords are random, made on the first seed and kept in
``data_dir/demo-logins.txt`` (mode 0600, one ``username password`` a line),
so each start can print them again without the database ever holding more
than their hashes. A demo user whose line is missing (the file was removed)
gets a new password. The guard is linked to the first qualified patrol guard
of the demo staff, when there is one. API clients do not log in to the
console, so none is made here.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from arc.auth import passwords, service
from arc.auth.models import ROLE_NAMES_ZH, Role
from arc.db import Connection
from arc.guards import service as staff_service
from arc.guards.staffing import Category

LOGINS_FILE = "demo-logins.txt"
ACTOR = "arc up --demo"
DEMO_USERS: tuple[tuple[str, Role, str], ...] = (
    ("operator", Role.OPERATOR, "演示值守员"),
    ("supervisor", Role.SUPERVISOR, "演示值班主管"),
    ("admin", Role.ADMIN, "演示系统管理员"),
    ("auditor", Role.AUDITOR, "演示审计员"),
    ("guard", Role.GUARD, "演示巡逻保安员（日班）"),
    ("guard2", Role.GUARD, "演示巡逻保安员（夜班）"),
)
# The beat of the demo's first site (arc/demo.py): its day and night guards
# get the two guard logins, so that one of them is on shift whenever the demo
# runs and can be sent to that site's alarms (an off-shift guard never is).
DEMO_BEAT = "朝阳-国贸"


def _new_password(username: str) -> str:
    while True:
        candidate = secrets.token_urlsafe(12)  # 16 characters, 96 bits
        try:
            passwords.check_policy(candidate, username=username)
        except passwords.WeakPassword:
            continue  # rare: too few character classes
        return candidate


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    logins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, password = line.partition(" ")
        if sep and name and password:
            logins[name] = password
    return logins


def _write(path: Path, logins: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(f"{name} {password}\n" for name, password in logins.items())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


async def _patrol_guards(conn: Connection) -> list[uuid.UUID]:
    """The qualified patrol guards of the demo beat, earliest shift first."""
    staff = await staff_service.list_staff(conn=conn)
    eligible = sorted(
        (
            s
            for s in staff
            if s.category == Category.PATROL_RESPONSE
            and s.eligible
            and s.active
            and s.beat == DEMO_BEAT
        ),
        key=lambda s: (s.shift_start is None, s.shift_start, s.certificate_no or ""),
    )
    return [s.staff_id for s in eligible]


async def seed_demo_users(*, conn: Connection, data_dir: Path) -> list[str]:
    """Add the demo users that are missing; return the lines that show their logins."""
    path = data_dir / LOGINS_FILE
    logins = _read(path)
    changed = False
    linked = {u.staff_id for u in await service.list_users(conn=conn)}
    guards = iter(g for g in await _patrol_guards(conn) if g not in linked)
    for username, role, display_name in DEMO_USERS:
        existing = await service.get_user_by_name(conn=conn, username=username)
        if existing is not None and username in logins:
            continue
        password = _new_password(username)
        if existing is None:
            staff_id = next(guards, None) if role is Role.GUARD else None
            await service.add_user(
                conn=conn,
                username=username,
                display_name=display_name,
                role=role,
                password=password,
                actor=ACTOR,
                staff_id=staff_id,
            )
        else:
            await service.set_password(
                conn=conn, user_id=existing.user_id, password=password, actor=ACTOR
            )
        logins[username] = password
        changed = True
    if changed or not path.exists():
        _write(path, logins)
    return [
        f"demo: console login {username} / {logins[username]} (zh: {ROLE_NAMES_ZH[role]})"
        for username, role, _ in DEMO_USERS
    ]
