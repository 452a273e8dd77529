"""The console's words in Chinese (the default) and English, and Beijing time for people.

Pages and the live queue's script take their text from here, so a term reads
the same everywhere. Class, step and resolution names come from the
dispatcher's own tables where it has them (``CLASS_NAMES_ZH``,
``STEP_NAMES_ZH``), never a second copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from arc.accounts.schedule import WEEKDAYS_ZH
from arc.dispatch.classification import CLASS_NAMES_ZH
from arc.dispatch.lifecycle import FalseAlarmCause, Resolution, Status
from arc.dispatch.plans import STEP_NAMES_ZH, StepKind
from arc.model import BEIJING


class Lang(StrEnum):
    """The languages of the console."""

    ZH = "zh"
    EN = "en"


DEFAULT_LANG = Lang.ZH

# key: (zh, en)
_WORDS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "app.title": ("联网报警运营中心", "Alarm receiving centre"),
        "nav.queue": ("报警队列", "Alarm queue"),
        "nav.staffing": ("人员配备", "Staffing"),
        "nav.guard": ("我的任务", "My assignments"),
        "nav.accounts": ("用户管理", "Accounts"),
        "nav.staff": ("人员与证书", "Staff and certificates"),
        "nav.rules": ("分级规则与预案", "Rules and plans"),
        "nav.users": ("账号与授权", "Users and grants"),
        "nav.audit": ("访问审计", "Access audit"),
        "audit.title": ("访问审计（REGULATION R5）", "Access audit (REGULATION R5)"),
        "audit.hint": (
            "每次查看、导出、复制、转发报警记录均在此留痕，最新在前（北京时间）；"
            "查看本页本身亦记入访问审计",
            "Every viewing, export, copy and forwarding of records, newest first (Beijing time);"
            " viewing this page is recorded here too",
        ),
        "audit.at": ("时间", "At"),
        "audit.actor": ("操作人", "Actor"),
        "audit.action": ("操作", "Action"),
        "audit.subject": ("对象", "Subject"),
        "audit.peer": ("来源地址", "From"),
        "audit.details": ("详情", "Details"),
        "audit.all": ("（全部）", "(all)"),
        "audit.none": ("没有符合条件的记录", "No rows match"),
        "audit.newest": ("最新", "Newest"),
        "audit.read": ("查看", "read"),
        "audit.export": ("导出", "export"),
        "audit.copy": ("复制", "copy"),
        "audit.forward": ("转发", "forward"),
        "audit.stream": ("实时订阅", "live stream"),
        "admin.cli_hint": (
            "修改请使用命令行 {cli}（每次修改均记入审计日志）",
            "Change these with {cli} (every change is audited)",
        ),
        "admin.audited_hint": (
            "此处的每次修改均记入审计日志（命令行亦可：{cli}）",
            "Every change made here is audited (or use {cli})",
        ),
        "admin.no_config": (
            "本控制台未配置 ARC_CONFIG_DATABASE_URL：只能查看，修改请使用命令行",
            "This console has no ARC_CONFIG_DATABASE_URL: it shows; change with the commands",
        ),
        "form.add": ("添加", "Add"),
        "form.save": ("保存", "Save"),
        "form.change": ("修改", "Change"),
        "form.remove": ("删除", "Remove"),
        "form.optional": ("（可选）", "(optional)"),
        "storm.start": ("启用风暴模式", "Start storm mode"),
        "storm.stop": ("停止", "Stop"),
        "storm.mode": ("方式", "Mode"),
        "storm.minutes": ("持续（分钟）", "Minutes"),
        "storm.delay": ("延迟（秒，仅 delay）", "Delay (s, delay only)"),
        "rules.match": ("匹配 SIA:BA / CID:130 / class:burglary", "Match SIA:BA, CID:130, class:…"),
        "rules.keep_class": ("（保持类别）", "(keep the class)"),
        "rules.account": ("用户编号（空 = 全部）", "Account (empty: all)"),
        "rules.zone": ("防区（空 = 全部）", "Zone (empty: all)"),
        "rules.grade_all": ("0 = 全部等级", "0 = every grade"),
        "rules.steps": (
            "步骤，每行一个 KIND:秒[:optional]",
            "Steps, one a line: KIND:SECONDS[:optional]",
        ),
        "rules.set_override": ("设置分级覆盖", "Set an override"),
        "rules.set_plan": ("设置预案", "Set a plan"),
        "user.add": ("添加用户", "Add a user"),
        "user.password": ("密码（至少10位，两类字符）", "Password (10+, two kinds)"),
        "user.new_password": ("设置新密码", "Set a new password"),
        "user.disable": ("停用", "Disable"),
        "user.enable": ("启用", "Enable"),
        "user.staff": ("员工ID（巡逻保安）", "Staff id (guards)"),
        "grant.apply": ("申请授权", "Apply for a grant"),
        "grant.user": ("被授权人", "For"),
        "grant.permission": ("权限", "Permission"),
        "grant.scope": ("范围（* 或 account:1234）", "Scope (* or account:1234)"),
        "grant.days": ("天数（1-90）", "Days (1-90)"),
        "grant.approve": ("批准", "Approve"),
        "grant.reject": ("驳回", "Reject"),
        "grant.issue": ("发放", "Issue"),
        "grant.change": ("变更", "Change"),
        "grant.revoke": ("撤销", "Revoke"),
        "account.add": ("添加报警用户", "Add an account"),
        "account.key": ("密钥 hex:… 或 ascii:…（不会显示）", "Key hex:… or ascii:… (never shown)"),
        "account.override": (
            "超出表1人员配备的理由（如需）",
            "Reason to serve beyond 表1 staffing (if needed)",
        ),
        "account.edit": ("修改现场资料", "Change the site"),
        "account.address": ("地址", "Address"),
        "account.latitude": ("纬度", "Latitude"),
        "account.longitude": ("经度", "Longitude"),
        "account.technology": ("探测器", "Detector"),
        "account.keyholders_hint": ("每行一人：姓名,电话,关系", "One a line: name,phone,relation"),
        "account.schedule": ("营业时间", "Open hours"),
        "account.schedule_hint": (
            "每行如 mon-fri 08:00-18:00（北京时间）；清空 = 不监控",
            "Lines such as mon-fri 08:00-18:00 (Beijing); empty: not supervised",
        ),
        "staff.add": ("添加人员", "Add a member of staff"),
        "staff.born": ("出生日期", "Date of birth"),
        "staff.exam": ("公安考试通过", "Exam passed"),
        "staff.trained": ("岗前培训", "Trained"),
        "staff.qualification": ("修改证书、考试、培训", "Change certificate, exam, training"),
        "admin.name": ("名称", "Name"),
        "admin.key": ("加密密钥", "Key"),
        "admin.link_test": ("链路测试（秒）", "Link test (s)"),
        "admin.enabled": ("启用", "Enabled"),
        "admin.updated": ("更新时间", "Updated"),
        "admin.certificate": ("保安员证号", "Certificate"),
        "admin.expires": ("有效期至", "Valid until"),
        "admin.beat": ("巡逻区域", "Beat"),
        "admin.shift": ("班次", "Shift"),
        "admin.storms": ("风暴模式", "Storm modes"),
        "admin.overrides": ("分级覆盖", "Classification overrides"),
        "admin.plans": ("预案覆盖", "Response-plan overrides"),
        "admin.role": ("角色", "Role"),
        "admin.grants": ("授权申请与发放", "Grants"),
        "admin.roles": ("角色权限", "Role permissions"),
        "nav.logout": ("退出", "Log out"),
        "nav.lang": ("English", "中文"),
        "login.title": ("登录", "Log in"),
        "login.username": ("用户名", "User name"),
        "login.password": ("密码", "Password"),
        "login.totp": ("动态验证码（如已启用）", "One-time code (if enabled)"),
        "login.submit": ("登录", "Log in"),
        "queue.title": ("报警队列", "Alarm queue"),
        "queue.empty": ("当前没有待处理的警情", "No open incidents"),
        "queue.live": ("实时", "Live"),
        "queue.offline": ("连接中断，正在重连…", "Disconnected, reconnecting…"),
        "queue.oldest": ("最久等待", "Oldest waiting"),
        "queue.load": ("值守人员近1小时处理量", "Operators' load, last hour"),
        "queue.sound": ("声音提示", "Sound alerts"),
        "queue.taken": ("接警", "Taken"),
        "queue.closed": ("结案", "Closed"),
        "queue.recent": ("近5分钟新警情（按类别）", "New incidents in 5 minutes, by class"),
        "queue.flood": (
            "警情激增：考虑启用风暴模式（arc storm start）",
            "Flood: consider storm mode (arc storm start)",
        ),
        "col.grade": ("等级", "Grade"),
        "col.class": ("类别", "Class"),
        "col.account": ("用户编号", "Account"),
        "col.title": ("警情", "Alarm"),
        "col.status": ("状态", "Status"),
        "col.opened": ("发生时间", "Opened"),
        "col.waiting": ("等待", "Waiting"),
        "col.owner": ("处置人", "Taken by"),
        "col.signals": ("信号数", "Signals"),
        "col.zones": ("防区", "Zones"),
        "incident.title": ("警情详情", "Incident"),
        "incident.take": ("接警", "Take"),
        "incident.taken_by": ("已由 {owner} 接警", "Taken by {owner}"),
        "incident.steps": ("处置预案步骤", "Response plan steps"),
        "incident.deadline": ("期限", "Deadline"),
        "incident.done": ("完成", "Done"),
        "incident.waive": ("免除（主管）", "Waive (supervisor)"),
        "incident.storm": ("风暴模式", "Storm mode"),
        "clock.accept": ("接受用时", "Time to accept"),
        "clock.arrive": ("到场用时", "Time to arrive"),
        "clock.clear": ("处置用时", "Time to clear"),
        "clock.target": ("目标", "target"),
        "clock.late": ("超时", "late"),
        "step.done": ("已完成", "done"),
        "step.waived": ("已免除", "waived"),
        "step.optional": ("可选", "optional"),
        "incident.outcome": ("结果", "Outcome"),
        "incident.reason": ("原因", "Reason"),
        "incident.keyholders": ("紧急联系人", "Keyholders"),
        "incident.call_outcome": ("通话结果", "Call outcome"),
        "incident.dispatch": ("派遣巡逻保安", "Dispatch a guard"),
        "incident.proposal": ("系统推荐", "Proposed"),
        "incident.override": ("改派（须填写原因）", "Override (reason required)"),
        "incident.note": ("备注", "Note"),
        "incident.add_note": ("添加备注", "Add note"),
        "incident.resolve": ("处置完毕", "Resolve"),
        "incident.close": ("结案", "Close"),
        "incident.resolution": ("结案代码", "Resolution"),
        "incident.cause": ("误报原因", "False-alarm cause"),
        "incident.log": ("处置记录", "Log"),
        "incident.restored": ("已恢复（操作前）", "Restored before action"),
        "incident.confirmed": ("已确认警情", "Confirmed"),
        "incident.guard": ("巡逻保安", "Guard"),
        "incident.accepted": ("已接受", "Accepted"),
        "incident.arrived": ("已到场", "Arrived"),
        "incident.account_page": ("用户档案", "Account"),
        "incident.refused": ("操作被拒绝", "Refused"),
        "account.title": ("用户档案", "Account"),
        "account.signals": ("信号记录", "Signal history"),
        "account.incidents": ("警情记录", "Incident history"),
        "account.site": ("现场状态", "Site state"),
        "account.filter": ("筛选", "Filter"),
        "account.from": ("起", "From"),
        "account.until": ("止", "Until"),
        "account.zone": ("防区", "Zone"),
        "account.newer": ("较新", "Newer"),
        "account.older": ("较早", "Older"),
        "account.rules": ("适用的分级规则与预案", "Rules that apply here"),
        "account.no_rules": (
            "无本中心覆盖：按默认分级与预案处置",
            "No overrides of the centre's: the default classes, grades and plans apply",
        ),
        "account.hours": ("营业时间（北京时间）", "Open hours (Beijing time)"),
        "account.no_hours": ("未设置营业时间（不监控布撤防时间）", "None set (not supervised)"),
        "account.closed": ("全天不营业", "closed"),
        "rules.level": ("范围", "Scope"),
        "rules.global": ("全局", "global"),
        "rules.own": ("本用户", "this account"),
        "rules.superseded": ("不适用：本用户另有规则", "Does not apply: this account has its own"),
        "rules.taken_over": (
            "以下情形由本用户规则取代：",
            "Except where this account's own decide: ",
        ),
        "rules.grades": ("适用等级", "Grades it decides"),
        "rules.every_grade": ("全部等级", "every grade"),
        "rules.set_by": ("设置人", "Set by"),
        "staffing.title": ("人员配备合规（联网报警运营规范 表1）", "Staffing compliance (表1)"),
        "staffing.customers": ("服务用户数", "Customers served"),
        "staffing.band": ("档位", "Band"),
        "staffing.category": ("人员类别", "Category"),
        "staffing.required": ("最低要求", "Required"),
        "staffing.eligible": ("合格人数", "Eligible"),
        "staffing.ok": ("合规", "Compliant"),
        "staffing.short": ("不足", "Short"),
        "guard.title": ("我的任务", "My assignments"),
        "guard.none": ("暂无派遣任务", "No assignments"),
        "guard.accept": ("接受任务", "Accept"),
        "guard.arrive": ("已到达现场", "Arrived"),
        "guard.report": ("现场报告", "Report"),
        "guard.clear": ("处置完毕", "Clear the site"),
        "guard.report_text": ("报告内容", "Report"),
        "error.forbidden": ("无权访问（REGULATION R5 最小权限）", "Forbidden (R5 least privilege)"),
        "error.not_found": ("未找到", "Not found"),
        "time.seconds": ("{n} 秒", "{n} s"),
        "time.minutes": ("{n} 分钟", "{n} min"),
    }
)

_STATUS: Final[Mapping[Status, tuple[str, str]]] = MappingProxyType(
    {
        Status.NEW: ("待接警", "new"),
        Status.ACKNOWLEDGED: ("已接警", "taken"),
        Status.IN_PROGRESS: ("处置中", "in progress"),
        Status.DISPATCHED: ("已派遣", "guard dispatched"),
        Status.ON_SITE: ("保安到场", "guard on site"),
        Status.RESOLVED: ("已处置", "resolved"),
        Status.CLOSED: ("已结案", "closed"),
    }
)

_RESOLUTION: Final[Mapping[Resolution, tuple[str, str]]] = MappingProxyType(
    {
        Resolution.REAL_ALARM: ("真实警情", "real alarm"),
        Resolution.FALSE_ALARM: ("误报", "false alarm"),
        Resolution.TEST: ("测试", "test"),
        Resolution.TECHNICAL_FAULT: ("设备故障", "technical fault"),
        Resolution.RESTORED: ("已自行恢复", "restored by itself"),
        Resolution.DUPLICATE: ("重复", "duplicate"),
    }
)

_CAUSE: Final[Mapping[FalseAlarmCause, tuple[str, str]]] = MappingProxyType(
    {
        FalseAlarmCause.USER_ERROR: ("用户操作失误", "user error"),
        FalseAlarmCause.EQUIPMENT: ("设备故障", "equipment"),
        FalseAlarmCause.ENVIRONMENT: ("环境因素", "environment"),
        FalseAlarmCause.INSTALLATION: ("安装问题", "installation"),
        FalseAlarmCause.UNKNOWN: ("原因不明", "unknown"),
    }
)

_STEP_EN: Final[Mapping[StepKind, str]] = MappingProxyType(
    {
        StepKind.CALL_KEYHOLDERS: "call the keyholders in order",
        StepKind.VERIFY_VIDEO: "verify by video",
        StepKind.DISPATCH_GUARD: "dispatch a patrol guard",
        StepKind.CALL_POLICE: "report to 110",
        StepKind.CALL_FIRE_SERVICE: "report to 119",
        StepKind.CALL_AMBULANCE: "call 120",
        StepKind.NOTIFY_CUSTOMER: "notify the customer",
        StepKind.SCHEDULE_SERVICE: "schedule a service visit",
        StepKind.REVIEW_SIGNAL: "review the unknown signal",
    }
)


_WEEKDAYS_EN: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def parse_lang(value: str | None) -> Lang:
    """The language a cookie or query names, Chinese when it names none we speak."""
    try:
        return Lang(value or DEFAULT_LANG)
    except ValueError:
        return DEFAULT_LANG


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang is Lang.ZH else pair[1]


def word(key: str, lang: Lang, **values: object) -> str:
    """The text for ``key``; an unknown key shows itself, so a missing word is seen, not hidden."""
    pair = _WORDS.get(key)
    text = key if pair is None else _pick(pair, lang)
    return text.format(**values) if values else text


def status_name(status: str, lang: Lang) -> str:
    """An incident status as people say it."""
    try:
        return _pick(_STATUS[Status(status)], lang)
    except ValueError:
        return status


def class_name(event_class: str, lang: Lang) -> str:
    """An alarm class in Chinese, or its code name in English."""
    if lang is Lang.ZH:
        return CLASS_NAMES_ZH.get(event_class, event_class)
    return event_class.replace("_", " ")


def step_name(kind: str, lang: Lang) -> str:
    """A plan step as the operator reads it."""
    try:
        step = StepKind(kind)
    except ValueError:
        return kind
    return STEP_NAMES_ZH[step] if lang is Lang.ZH else _STEP_EN[step]


def resolution_choices(lang: Lang) -> list[tuple[str, str]]:
    """(code, name) of every resolution, for the closing form."""
    return [(r.value, _pick(_RESOLUTION.get(r, (r.value, r.value)), lang)) for r in Resolution]


def cause_choices(lang: Lang) -> list[tuple[str, str]]:
    """(code, name) of every false-alarm cause."""
    return [(c.value, _pick(_CAUSE[c], lang)) for c in FalseAlarmCause]


def duration(value: timedelta) -> str:
    """A duration as ``M:SS`` (``H:MM:SS`` from an hour), the way a stopwatch shows it."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def weekday_names(lang: Lang) -> tuple[str, ...]:
    """The days of the week, Monday first, as a schedule lists them."""
    return WEEKDAYS_ZH if lang is Lang.ZH else _WEEKDAYS_EN


def beijing(value: datetime | None) -> str:
    """A moment as a Beijing wall-clock time (the zone the operators work in)."""
    if value is None:
        return ""
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def script_words(lang: Lang) -> dict[str, object]:
    """What the queue's script needs to render rows without a round trip."""
    return {
        "words": {key: _pick(pair, lang) for key, pair in _WORDS.items()},
        "status": {s.value: _pick(pair, lang) for s, pair in _STATUS.items()},
        "classes": {c: class_name(c, lang) for c in CLASS_NAMES_ZH},
    }
