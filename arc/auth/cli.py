"""`arc user`, `arc grant` and `arc access-audit`: users, R5 grants and the access audit.

``arc user`` is run by whoever holds the database owner's role, as ``arc
account`` is; the audit log names them ``cli:LOGIN``. Passwords are read from
a prompt (twice) or, with ``--password-stdin``, one line of stdin: never from
the command line, where the process list and the shell history would keep
them. ``arc grant`` acts as an ARC user (``--as USERNAME``), who logs in for
it (password, and the TOTP code with ``--totp`` if they use one): an approval
is a person's decision, and the record says whose. ``arc access-audit``
writes its own row to the access audit: reading who read is a read too.
Exit status: 0 done, 1 refused (bad input, not allowed, database error),
2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from pydantic import ValidationError

from arc import audit, runtime
from arc.auth import access, grants, service
from arc.auth.models import GRANTABLE, ROLE_NAMES_ZH, AuthError, Permission, Role, User
from arc.auth.passwords import WeakPassword
from arc.auth.totp import totp_box
from arc.config import Settings
from arc.db import Connection
from arc.model import BEIJING
from arc.terminal import print_table

COMMANDS = ("user", "grant", "access-audit")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``user``, ``grant`` and ``access-audit`` to the ``arc`` parser."""
    _user_commands(subparsers)
    _grant_commands(subparsers)
    reading = subparsers.add_parser(
        "access-audit",
        help="show who read, exported or copied alarm records (REGULATION R5)",
        description="List the access audit, oldest first. This reading is itself recorded.",
    )
    reading.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="ISO 8601; Beijing time without an offset (default: 24 hours ago)",
    )
    reading.add_argument("--until", type=_time, metavar="TIME", help="ISO 8601 (default: now)")
    reading.add_argument("--actor", help="only this reader")
    reading.add_argument("--limit", type=int, default=1000, help="at most this many rows")
    reading.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def _user_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = subparsers.add_parser(
        "user",
        help="add, list, disable users of the console; passwords and TOTP",
        description="Manage the console's users (REGULATION R5). Roles: "
        + ", ".join(f"{r.value} ({ROLE_NAMES_ZH[r]})" for r in Role)
        + ". Every change is written to the audit log.",
    )
    commands = user.add_subparsers(dest="user_command", required=True)
    add = commands.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("username", help="2-63 characters: a-z 0-9 . _ -")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name", default="", help="display name (default: the username)")
    add.add_argument(
        "--staff", type=_uuid, metavar="STAFF_ID", help="a guard's row (arc staff list)"
    )
    _password_stdin(add)
    listing = commands.add_parser("list", help="show the users (never their passwords)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    for name, text in (
        ("disable", "stop a user logging in and end their sessions"),
        ("enable", "let a disabled user log in again"),
    ):
        commands.add_parser(name, help=text).add_argument("username")
    password = commands.add_parser("password", help="set a new password and end the sessions")
    password.add_argument("username")
    _password_stdin(password)
    totp_cmd = commands.add_parser(
        "totp",
        help="enrol a TOTP authenticator (prints the otpauth:// URI once, then asks for a code)",
    )
    totp_cmd.add_argument("username")
    group = totp_cmd.add_mutually_exclusive_group()
    group.add_argument("--confirm", metavar="CODE", help="confirm a pending enrolment")
    group.add_argument("--no-confirm", action="store_true", help="print the URI, confirm later")
    group.add_argument("--remove", action="store_true", help="turn TOTP off (a lost phone)")


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of stdin"
    )


def _grant_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grant = subparsers.add_parser(
        "grant",
        help="apply for, approve, issue, change, revoke permissions (REGULATION R5)",
        description="The grants workflow: applied -> approved -> issued (for --days) -> "
        "changed -> revoked, or rejected. Steps are taken as an ARC user (--as), who logs in "
        "for it; nobody approves their own application. Every step is audited.",
    )
    commands = grant.add_subparsers(dest="grant_command", required=True)
    apply = commands.add_parser("apply", help="apply for a permission")
    _as_user(apply)
    apply.add_argument("--for", dest="grantee", metavar="USERNAME", help="default: yourself")
    apply.add_argument("--permission", required=True, choices=sorted(p.value for p in GRANTABLE))
    apply.add_argument("--scope", default=grants.ALL, help="* (default) or e.g. account:1234")
    apply.add_argument("--reason", required=True, type=_text)
    apply.add_argument("--days", required=True, type=int, help=f"1-{grants.MAX_DAYS}")
    for name, text in (
        ("approve", "approve an application"),
        ("reject", "reject an application"),
        ("revoke", "end a grant for good"),
    ):
        step = commands.add_parser(name, help=text)
        step.add_argument("grant_id", type=_uuid, metavar="GRANT_ID")
        _as_user(step)
        step.add_argument("--reason", required=True, type=_text)
    issue = commands.add_parser("issue", help="put an approved grant in force for its days")
    issue.add_argument("grant_id", type=_uuid, metavar="GRANT_ID")
    _as_user(issue)
    change = commands.add_parser("change", help="give an issued grant new days or scope")
    change.add_argument("grant_id", type=_uuid, metavar="GRANT_ID")
    _as_user(change)
    change.add_argument("--reason", required=True, type=_text)
    change.add_argument("--days", type=int, help="valid for this many days from now")
    change.add_argument("--scope")
    listing = commands.add_parser("list", help="show the grants and their state now")
    listing.add_argument("--user", metavar="USERNAME", help="only this user's")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def _as_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
    parser.add_argument("--totp", metavar="CODE", help="your authenticator's code, if you use one")
    _password_stdin(parser)


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (a UUID)") from None


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("give the reason (REGULATION R5: each step is recorded)")
    return text.strip()


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=BEIJING)


def _fail(args: argparse.Namespace, message: str) -> None:
    sub = getattr(args, "user_command", None) or getattr(args, "grant_command", None)
    name = f"arc {args.command}" + (f" {sub}" if sub else "")
    print(f"{name}: {message}", file=sys.stderr)


def _read_password(args: argparse.Namespace, *, confirm: bool, prompt: str) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("再次输入 again: ") != first:
        raise AuthError("confirm", "两次输入的密码不一致 the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    """Run an ``arc user | grant | access-audit`` command; return the exit status."""
    try:
        settings = Settings()
    except ValidationError as error:
        _fail(args, f"configuration: {error}")
        return 1
    try:
        if args.command == "user":
            return asyncio.run(_user(settings, args))
        if args.command == "grant":
            return asyncio.run(_grant(settings, args))
        return asyncio.run(_access_audit(settings, args))
    except (AuthError, WeakPassword) as error:
        _fail(args, str(error))
        return 1
    except runtime.DatabaseUnavailable as error:
        _fail(args, str(error))
        return 1
    except (EOFError, KeyboardInterrupt):
        _fail(args, "cancelled")
        return 1


def _database(settings: Settings) -> runtime.AdminConnection:
    return runtime.admin_connection(settings, application_name="arc-auth")


async def _named(conn: Connection, username: str) -> User:
    found = await service.get_user_by_name(conn=conn, username=username)
    if found is None:
        raise service.UserNotFound("user", f"无此用户 no user {username!r} (arc user list)")
    return found


def _user_json(user: User) -> dict[str, object]:
    return {
        "user_id": str(user.user_id),
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "staff_id": str(user.staff_id) if user.staff_id else None,
        "totp_enabled": user.totp_enabled,
        "disabled": user.disabled,
    }


async def _user(settings: Settings, args: argparse.Namespace) -> int:
    command = args.user_command
    actor = audit.cli_actor()
    password: str | None = None
    if command in ("add", "password"):
        # Before the database opens: a typing mistake costs no start-up.
        password = _read_password(args, confirm=not args.password_stdin, prompt="新密码 password: ")
    async with _database(settings) as conn:
        if command == "add":
            assert password is not None  # noqa: S101 - read above
            user = await service.add_user(
                conn=conn,
                username=args.username,
                display_name=args.name,
                role=args.role,
                password=password,
                actor=actor,
                staff_id=args.staff,
            )
            print(f"user {user.username} added: {user.role} ({ROLE_NAMES_ZH[user.role]})")
            return 0
        if command == "list":
            users = await service.list_users(conn=conn)
            if args.json:
                data = [_user_json(u) for u in users]
                sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
                return 0
            rows = [("USERNAME", "NAME", "ROLE", "TOTP", "ENABLED", "STAFF")]
            rows += [
                (
                    u.username,
                    u.display_name,
                    f"{u.role.value} ({ROLE_NAMES_ZH[u.role]})",
                    "yes" if u.totp_enabled else "no",
                    "no" if u.disabled else "yes",
                    str(u.staff_id) if u.staff_id else "",
                )
                for u in users
            ]
            print_table(rows)
            return 0
        user = await _named(conn, args.username)
        if command == "disable":
            await service.disable_user(conn=conn, user_id=user.user_id, actor=actor)
            print(f"user {user.username} disabled; their sessions have ended")
        elif command == "enable":
            await service.enable_user(conn=conn, user_id=user.user_id, actor=actor)
            print(f"user {user.username} enabled")
        elif command == "password":
            assert password is not None  # noqa: S101 - read above
            await service.set_password(
                conn=conn, user_id=user.user_id, password=password, actor=actor
            )
            print(f"password of {user.username} changed; their sessions have ended")
        else:
            return await _totp(conn, settings, args, user, actor)
    return 0


async def _totp(
    conn: Connection, settings: Settings, args: argparse.Namespace, user: User, actor: str
) -> int:
    box = totp_box(settings.master_key)
    if args.remove:
        await service.remove_totp(conn=conn, user_id=user.user_id, actor=actor)
        print(f"TOTP of {user.username} removed")
        return 0
    code = args.confirm
    if code is None:
        uri = await service.enroll_totp(conn=conn, user_id=user.user_id, actor=actor, box=box)
        # The one time the secret is shown: on the terminal of whoever enrols, not in a log.
        print("把此 URI 加入身份验证器 add this URI to the authenticator app (shown once):")
        print(uri)
        if args.no_confirm:
            print(f"then: arc user totp {user.username} --confirm CODE")
            return 0
        print("动态码 code shown by the app: ", end="", flush=True)
        code = sys.stdin.readline().strip()
    await service.confirm_totp(conn=conn, user_id=user.user_id, code=code, actor=actor, box=box)
    print(f"TOTP of {user.username} on: logins need a code from now on")
    return 0


async def _login(conn: Connection, settings: Settings, args: argparse.Namespace) -> User:
    password = _read_password(args, confirm=False, prompt=f"{args.as_user} 的密码 password: ")
    return await service.authenticate(
        conn=conn,
        username=args.as_user,
        password=password,
        totp_code=args.totp,
        peer=None,  # the command line: the username's limit applies, no address
        now=datetime.now(UTC),
        box=totp_box(settings.master_key),
    )


async def _grant(settings: Settings, args: argparse.Namespace) -> int:
    command = args.grant_command
    async with _database(settings) as conn:
        now = datetime.now(UTC)
        if command == "list":
            user_id = (await _named(conn, args.user)).user_id if args.user else None
            found = await grants.list_grants(conn=conn, user_id=user_id)
            if args.json:
                for g in found:
                    sys.stdout.buffer.write(orjson.dumps(g.to_json(now)) + b"\n")
                return 0
            rows = [("GRANT", "USER", "PERMISSION", "SCOPE", "STATE", "UNTIL (北京时间)", "BY")]
            rows += [
                (
                    str(g.grant_id),
                    g.username,
                    g.permission.value,
                    g.scope,
                    g.state(now),
                    _beijing(g.valid_until),
                    g.applied_by,
                )
                for g in found
            ]
            print_table(rows)
            print(f"{len(found)} grants")
            return 0
        actor = await _login(conn, settings, args)
        if command == "apply":
            grantee = await _named(conn, args.grantee) if args.grantee else actor
            grant = await grants.apply_grant(
                conn=conn,
                user_id=grantee.user_id,
                permission=Permission(args.permission),
                scope=args.scope,
                reason=args.reason,
                valid_days=args.days,
                actor=actor,
            )
            print(f"grant {grant.grant_id} applied for: {grant.username} {grant.permission}")
            return 0
        if command == "approve":
            grant = await grants.approve_grant(
                conn=conn, grant_id=args.grant_id, actor=actor, reason=args.reason
            )
        elif command == "reject":
            grant = await grants.reject_grant(
                conn=conn, grant_id=args.grant_id, actor=actor, reason=args.reason
            )
        elif command == "issue":
            grant = await grants.issue_grant(conn=conn, grant_id=args.grant_id, actor=actor)
        elif command == "change":
            grant = await grants.change_grant(
                conn=conn,
                grant_id=args.grant_id,
                actor=actor,
                reason=args.reason,
                valid_days=args.days,
                scope=args.scope,
            )
        else:
            grant = await grants.revoke_grant(
                conn=conn, grant_id=args.grant_id, actor=actor, reason=args.reason
            )
    state = grant.state(datetime.now(UTC))
    until = f", valid until {_beijing(grant.valid_until)} 北京时间" if state == "issued" else ""
    print(f"grant {grant.grant_id} {state}{until}")
    return 0


def _beijing(at: datetime | None) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if at is not None else ""


async def _access_audit(settings: Settings, args: argparse.Namespace) -> int:
    until = args.until
    since = args.since or (until or datetime.now(UTC)) - timedelta(hours=24)
    async with _database(settings) as conn, conn.transaction():
        rows = await access.list_access(
            conn=conn, since=since, until=until, actor=args.actor, limit=args.limit
        )
        # In the read's transaction: the listing and its row commit together.
        await access.record_access(
            conn=conn,
            actor=audit.cli_actor(),
            role="cli",
            action="read",
            subject="access_audit",
            details={
                "since": since.isoformat(),
                "until": until.isoformat() if until else None,
                "actor": args.actor,
                "rows": len(rows),
            },
            peer=None,
        )
    if args.json:
        for row in rows:
            sys.stdout.buffer.write(orjson.dumps(row.to_json()) + b"\n")
        return 0
    table = [("AT (北京时间)", "ACTOR", "ROLE", "ACTION", "SUBJECT", "PEER")]
    table += [
        (
            r.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            r.actor,
            r.role,
            r.action,
            r.subject,
            r.peer or "",
        )
        for r in rows
    ]
    print_table(table)
    print(f"{len(rows)} rows (this reading is recorded too)")
    return 0
