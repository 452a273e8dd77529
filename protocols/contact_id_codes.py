"""The Contact ID event code table (PROTOCOLS.md §2.3, §3.4).

One row per code: English and Chinese names, default class, what the CCC field
addresses, what qualifier 1 and 3 mean, and the SIA codes it maps to. Kept
apart from the codec in ``protocols.contact_id``, which re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from protocols.events import Address, EventClass


@dataclass(frozen=True, slots=True)
class CidCode:
    """One Contact ID event code: its names, default class and SIA equivalents.

    ``new_meaning_zh`` and ``restore_meaning_zh`` say what qualifier 1 and 3 mean
    for this code ("—" where a restore has no meaning, e.g. a periodic test).
    ``address`` says whether CCC is a zone, a user, or unused.
    """

    code: str
    name_en: str
    name_zh: str
    event_class: EventClass
    address: Address
    new_meaning_zh: str
    restore_meaning_zh: str
    sia_new: str | None
    sia_restore: str | None


_BURGLARY = EventClass.BURGLARY
_HOLDUP = EventClass.HOLDUP
_PANIC = EventClass.PANIC
_FIRE = EventClass.FIRE
_GAS = EventClass.GAS
_WATER = EventClass.WATER
_MEDICAL = EventClass.MEDICAL
_TAMPER = EventClass.TAMPER
_TROUBLE = EventClass.TROUBLE
_COMM = EventClass.COMMUNICATION
_OC = EventClass.OPEN_CLOSE  # opening (disarm) / closing (arm)
_TEST = EventClass.TEST
_OTHER = EventClass.OTHER
_ZONE = Address.ZONE
_USER = Address.USER
_NONE = Address.NONE
_NO_RESTORE: Final = "—"


def _row(
    code: str,
    name_en: str,
    name_zh: str,
    event_class: EventClass,
    address: Address,
    sia: str = "",
    meanings: str | None = None,
) -> CidCode:
    """Build one table row from a compact notation.

    ``sia`` is "XX/YY" (new/restore), "XX" (same code for both) or "" (none).
    ``meanings`` is "new/restore" in Chinese; None means "<name>/<name>恢复" (an
    alarm and its restore) and "—" means "<name>/—" (a one-shot report).
    """
    sia_new, _, sia_restore = sia.partition("/")
    if meanings is None:
        new, restore = name_zh, name_zh + "恢复"
    elif meanings == _NO_RESTORE:
        new, restore = name_zh, _NO_RESTORE
    else:
        new, _, restore = meanings.partition("/")
    return CidCode(
        code=code,
        name_en=name_en,
        name_zh=name_zh,
        event_class=event_class,
        address=address,
        new_meaning_zh=new,
        restore_meaning_zh=restore,
        sia_new=sia_new or None,
        sia_restore=(sia_restore or sia_new) or None,
    )


def _vendor(row: CidCode, vendor_en: str, vendor_zh: str) -> CidCode:
    # A private code is named with its vendor: another vendor may use it otherwise
    # (Trikdis sends 700, which Hengbo defines as a link hang-up).
    name_en, name_zh = f"{row.name_en} ({vendor_en})", f"{row.name_zh}（{vendor_zh}）"
    return replace(row, name_en=name_en, name_zh=name_zh)


def _hengbo(
    code: str,
    name_en: str,
    name_zh: str,
    event_class: EventClass,
    address: Address,
    sia: str = "",
    meanings: str | None = None,
) -> CidCode:
    row = _row(code, name_en, name_zh, event_class, address, sia, meanings)
    return _vendor(row, "Hengbo", "恒博")


def _hikvision(
    code: str,
    name_en: str,
    name_zh: str,
    event_class: EventClass,
    address: Address,
    sia: str = "",
    meanings: str | None = None,
) -> CidCode:
    row = _row(code, name_en, name_zh, event_class, address, sia, meanings)
    return _vendor(row, "Hikvision", "海康")


# Hengbo panels announce their type with codes 707-817 in steps of ten (S-HB).
_HENGBO_PANEL_TYPES: Final = (
    ("707", "network module", "网络模块"),
    ("717", "GPRS panel", "GPRS主机"),
    ("727", "LCD panel", "液晶主机"),
    ("737", "wired network panel", "网线主机"),
    ("747", "Wi-Fi panel (old)", "WiFi主机（旧版）"),
    ("757", "three-section panel", "三区段主机"),
    ("767", "IoT-card panel", "物联卡主机"),
    ("777", "true-colour panel", "真彩主机"),
    ("787", "GPRS IoT-card panel", "GPRS物联卡主机"),
    ("797", "GPRS panel with phone", "GPRS电话主机"),
    ("807", "NB-IoT receiver", "NB报警接收主机"),
    ("817", "Wi-Fi panel (new)", "WiFi主机（新版）"),
)


_ROWS: Final[tuple[CidCode, ...]] = (
    # 1xx alarms. 100-102 are about a person, hence medical.
    _row("100", "Medical", "医疗求助", _MEDICAL, _ZONE, "MA/MH"),
    _row("101", "Personal emergency", "个人紧急求助", _MEDICAL, _ZONE, "QA/QH"),
    _row("102", "Fail to report in", "未按时报到", _MEDICAL, _ZONE),
    _row("110", "Fire", "火警", _FIRE, _ZONE, "FA/FH"),
    _row("111", "Smoke", "烟感火警", _FIRE, _ZONE, "FA/FH"),
    _row("112", "Combustion", "燃烧火警", _FIRE, _ZONE, "FA/FH"),
    # Sprinkler water flow means a head has opened: a fire, whatever SIA's WA says.
    _row("113", "Water flow", "喷淋水流报警", _FIRE, _ZONE, "WA/WH"),
    _row("114", "Heat", "温感火警", _FIRE, _ZONE, "KA/KH"),
    _row("115", "Pull station", "手动报警按钮火警", _FIRE, _ZONE),
    _row("116", "Duct", "风管火警", _FIRE, _ZONE),
    _row("117", "Flame", "火焰火警", _FIRE, _ZONE, "FA/FH"),
    _row("118", "Near alarm (fire)", "火灾预警", _FIRE, _ZONE),
    _row("120", "Panic", "紧急报警", _PANIC, _ZONE, "PA/PH"),
    _row("121", "Duress", "胁迫报警", _HOLDUP, _USER, "HA/HH"),
    _row("122", "Silent panic / hold-up", "无声劫警", _HOLDUP, _ZONE, "HA/HH"),
    _row("123", "Audible panic", "有声紧急报警", _PANIC, _ZONE),
    _row("124", "Duress - access granted", "胁迫报警（准予进入）", _HOLDUP, _ZONE, "HA/HH"),
    _row("125", "Duress - egress granted", "胁迫报警（准予外出）", _HOLDUP, _ZONE, "HA/HH"),
    _row("130", "Burglary", "盗警", _BURGLARY, _ZONE, "BA/BH"),
    _row("131", "Perimeter burglary", "周界盗警", _BURGLARY, _ZONE, "BA/BH"),
    _row("132", "Interior burglary", "内部盗警", _BURGLARY, _ZONE, "BA/BH"),
    _row("133", "24-hour burglary (safe)", "24小时盗警（保险柜）", _BURGLARY, _ZONE, "BA/BH"),
    _row("134", "Entry/exit burglary", "出入口盗警", _BURGLARY, _ZONE, "BA/BH"),
    _row("135", "Day/night burglary", "日夜防区盗警", _BURGLARY, _ZONE, "BA/BH"),
    _row("136", "Outdoor burglary", "室外盗警", _BURGLARY, _ZONE, "BA/BH"),
    _row("137", "Tamper", "防拆报警", _TAMPER, _ZONE, "TA/TR"),
    _row("138", "Near alarm (burglary)", "盗警预警", _BURGLARY, _ZONE, "BA/BH"),
    _row("139", "Intrusion verifier", "入侵复核报警", _BURGLARY, _ZONE, "BA/BH"),
    _row("140", "General alarm", "通用报警", _BURGLARY, _ZONE, "BA/BH"),
    _row("141", "Polling loop open", "总线回路开路", _TROUBLE, _ZONE),
    _row("142", "Polling loop short", "总线回路短路", _TROUBLE, _ZONE),
    _row("143", "Expansion module failure", "扩展模块故障", _TROUBLE, _ZONE, "ET/ER"),
    _row("144", "Sensor tamper", "探测器防拆", _TAMPER, _ZONE, "TA/TR"),
    _row("145", "Expansion module tamper", "扩展模块防拆", _TAMPER, _ZONE),
    _row("146", "Silent burglary", "无声盗警", _BURGLARY, _ZONE, "HA/HH"),
    _row("147", "Sensor supervision failure", "探测器监测失败", _COMM, _ZONE),
    _row("150", "24-hour non-burglary", "24小时非盗警防区报警", _OTHER, _ZONE, "UA/UH"),
    _row("151", "Gas detected", "燃气泄漏报警", _GAS, _ZONE, "GA/GH"),
    _row("152", "Refrigeration", "冷藏异常报警", _OTHER, _ZONE),
    _row("153", "Loss of heat", "供暖中断报警", _OTHER, _ZONE),
    _row("154", "Water leakage", "漏水报警", _WATER, _ZONE),
    _row("155", "Foil break", "防盗箔断裂报警", _BURGLARY, _ZONE),
    _row("156", "Day trouble", "日间防区故障", _TROUBLE, _ZONE),
    _row("157", "Low bottled gas level", "瓶装燃气不足", _OTHER, _ZONE),
    _row("158", "High temperature", "高温报警", _OTHER, _ZONE, "KA/KH"),
    _row("159", "Low temperature", "低温报警", _OTHER, _ZONE, "ZA/ZH"),
    _row("161", "Loss of air flow", "通风中断报警", _OTHER, _ZONE),
    _row("162", "Carbon monoxide detected", "一氧化碳报警", _GAS, _ZONE, "GA/GH"),
    _row("163", "Tank level", "储罐液位报警", _OTHER, _ZONE),
    # 2xx fire supervisory: the suppression system needs a technician, not a crew.
    _row("200", "Fire supervisory", "消防监管报警", _TROUBLE, _ZONE),
    _row("201", "Low water pressure", "消防水压过低", _TROUBLE, _ZONE),
    _row("202", "Low CO2", "二氧化碳灭火剂压力低", _TROUBLE, _ZONE),
    _row("203", "Gate valve sensor", "闸阀监测报警", _TROUBLE, _ZONE),
    _row("204", "Low water level", "消防水位过低", _TROUBLE, _ZONE),
    _row("205", "Pump activated", "消防泵启动", _TROUBLE, _ZONE, "", "消防泵启动/消防泵停止"),
    _row("206", "Pump failure", "消防泵故障", _TROUBLE, _ZONE),
    # 3xx troubles.
    _row("300", "System trouble", "系统故障", _TROUBLE, _ZONE, "YX/YZ"),
    _row("301", "AC loss", "交流掉电", _TROUBLE, _ZONE, "AT/AR", "交流掉电/交流复电"),
    _row("302", "Low system battery", "主机电池欠压", _TROUBLE, _ZONE, "YT/YR"),
    _row("303", "RAM checksum bad", "RAM校验错误", _TROUBLE, _ZONE, "YX/YZ"),
    _row("304", "ROM checksum bad", "ROM校验错误", _TROUBLE, _ZONE, "YX/YZ"),
    _row("305", "System reset", "系统复位", _OTHER, _ZONE, "YW/YZ", "—"),
    _row("306", "Panel programming changed", "主机编程修改", _OTHER, _ZONE, "YX/YZ", "—"),
    _row("307", "Self-test failure", "自检失败", _TROUBLE, _ZONE, "YX/YZ"),
    _row("308", "System shutdown", "系统关机", _TROUBLE, _ZONE, "YX/YZ", "系统关机/系统开机"),
    _row("309", "Battery test failure", "电池测试失败", _TROUBLE, _ZONE, "YT/YR"),
    _row("310", "Ground fault", "接地故障", _TROUBLE, _ZONE, "YX/YZ"),
    _row("311", "Battery missing/dead", "电池缺失或损坏", _TROUBLE, _ZONE, "YM/YR"),
    _row("312", "Power supply overcurrent", "电源过流", _TROUBLE, _ZONE, "YP/YQ"),
    _row("313", "Engineer reset", "工程师复位", _OTHER, _USER, "", "—"),
    _row("320", "Sounder/relay trouble", "警号/继电器故障", _TROUBLE, _ZONE, "RC/RO"),
    _row("321", "Bell 1 trouble", "警铃1故障", _TROUBLE, _ZONE, "YX/YZ"),
    _row("322", "Bell 2 trouble", "警铃2故障", _TROUBLE, _ZONE, "YX/YZ"),
    _row("323", "Alarm relay trouble", "报警继电器故障", _TROUBLE, _ZONE, "RC/RO"),
    _row("324", "Trouble relay trouble", "故障继电器故障", _TROUBLE, _ZONE, "RC/RO"),
    _row("325", "Reversing relay trouble", "反极继电器故障", _TROUBLE, _ZONE, "RC/RO"),
    _row("326", "NAC 3 trouble", "第3路声光输出故障", _TROUBLE, _ZONE),
    _row("327", "NAC 4 trouble", "第4路声光输出故障", _TROUBLE, _ZONE),
    _row("330", "System peripheral trouble", "外设故障", _TROUBLE, _ZONE, "YX/YZ"),
    _row("331", "Peripheral polling loop open", "外设总线开路", _TROUBLE, _ZONE, "YX/YZ"),
    _row("332", "Peripheral polling loop short", "外设总线短路", _TROUBLE, _ZONE, "YX/YZ"),
    _row("333", "Expansion module failure", "扩展模块失效", _TROUBLE, _ZONE, "ET/ER"),
    _row("334", "Repeater failure", "中继器故障", _TROUBLE, _ZONE, "YX/YZ"),
    _row("335", "Local printer out of paper", "本地打印机缺纸", _TROUBLE, _ZONE, "VO/VI"),
    _row("336", "Local printer failure", "本地打印机故障", _TROUBLE, _ZONE, "VT/VR"),
    _row("337", "Expansion module DC loss", "扩展模块直流掉电", _TROUBLE, _ZONE, "ET/ER"),
    _row("338", "Expansion module low battery", "扩展模块电池欠压", _TROUBLE, _ZONE, "ET/ER"),
    _row("339", "Expansion module reset", "扩展模块复位", _TROUBLE, _ZONE, "ET/ER"),
    _row("341", "Expansion module tamper", "扩展模块防拆", _TAMPER, _ZONE, "ET/ER"),
    _row("342", "Expansion module AC loss", "扩展模块交流掉电", _TROUBLE, _ZONE, "ET/ER"),
    _row("343", "Expansion module self-test failure", "扩展模块自检失败", _TROUBLE, _ZONE, "ET/ER"),
    # Jamming attacks the radio path, so it is a communication fault.
    _row("344", "RF receiver jam detected", "无线接收干扰", _COMM, _ZONE, "YC/YK"),
    _row("350", "Communication trouble", "通讯故障", _COMM, _ZONE, "YC/YK"),
    _row("351", "Telco 1 fault", "电话线1故障", _COMM, _ZONE, "LT/LR"),
    _row("352", "Telco 2 fault", "电话线2故障", _COMM, _ZONE, "LT/LR"),
    _row("353", "Long-range radio transmitter fault", "远程无线发射机故障", _COMM, _ZONE, "YC/YK"),
    _row("354", "Failure to communicate event", "事件上报失败", _COMM, _ZONE, "YC/YK"),
    _row("355", "Loss of radio supervision", "无线监测丢失", _COMM, _ZONE, "YC/YK"),
    _row("356", "Loss of central polling", "中心轮询丢失", _COMM, _ZONE, "YC/YK"),
    _row("357", "Long-range radio VSWR problem", "远程无线驻波比异常", _COMM, _ZONE, "YC/YK"),
    _row("370", "Protection loop trouble", "防区回路故障", _TROUBLE, _ZONE),
    _row("371", "Protection loop open", "防区回路开路", _TROUBLE, _ZONE),
    _row("372", "Protection loop short", "防区回路短路", _TROUBLE, _ZONE),
    _row("373", "Fire trouble", "消防防区故障", _TROUBLE, _ZONE, "FT/FJ"),
    # An exit zone still open when the exit delay ends sounds a real alarm.
    _row("374", "Exit error alarm (zone)", "退出延时报警（防区）", _BURGLARY, _ZONE, "EA/BH"),
    _row("375", "Panic zone trouble", "紧急防区故障", _TROUBLE, _ZONE, "PT/PJ"),
    _row("376", "Hold-up zone trouble", "劫警防区故障", _TROUBLE, _ZONE, "HT/HR"),
    _row("377", "Swinger trouble", "频繁触发故障", _TROUBLE, _ZONE),
    _row("378", "Cross-zone trouble", "交叉防区故障", _TROUBLE, _ZONE),
    _row("380", "Sensor trouble", "探测器故障", _TROUBLE, _ZONE, "YX/YZ"),
    _row("381", "Loss of supervision - RF", "无线探测器失联", _COMM, _ZONE, "YC/YK"),
    _row("382", "Loss of supervision - RPM", "总线模块失联", _COMM, _ZONE, "YC/YK"),
    _row("383", "Sensor tamper", "探测器防拆", _TAMPER, _ZONE),
    _row("384", "RF low battery", "无线探测器欠压", _TROUBLE, _ZONE),
    _row("385", "Smoke detector high sensitivity", "烟感灵敏度过高", _TROUBLE, _ZONE),
    _row("386", "Smoke detector low sensitivity", "烟感灵敏度过低", _TROUBLE, _ZONE),
    _row("387", "Intrusion detector high sensitivity", "入侵探测器灵敏度过高", _TROUBLE, _ZONE),
    _row("388", "Intrusion detector low sensitivity", "入侵探测器灵敏度过低", _TROUBLE, _ZONE),
    _row("389", "Sensor self-test failure", "探测器自检失败", _TROUBLE, _ZONE),
    _row("391", "Sensor watch trouble", "探测器活动监视故障", _TROUBLE, _ZONE),
    _row("392", "Drift compensation error", "漂移补偿错误", _TROUBLE, _ZONE),
    _row("393", "Maintenance alert", "探测器需维护", _TROUBLE, _ZONE, "YX/YZ"),
    # 4xx openings and closings: qualifier 1 is the opening (disarm), 3 the closing (arm).
    _row("400", "Open/close", "撤布防", _OC, _USER, "OP/CL", "撤防/布防"),
    _row("401", "Open/close by user", "用户撤布防", _OC, _USER, "OP/CL", "撤防/布防"),
    _row("402", "Group open/close", "分区组撤布防", _OC, _USER, "OB/CB", "组撤防/组布防"),
    _row("403", "Auto open/close", "自动撤布防", _OC, _USER, "OA/CA", "自动撤防/自动布防"),
    _row("404", "Late to open/close", "逾时撤布防", _OC, _USER, "", "逾时撤防/逾时布防"),
    _row("405", "Deferred open/close", "延期撤布防", _OC, _USER, "", "延期撤防/延期布防"),
    _row("406", "Cancel", "用户取消报警", _OC, _USER, "OC", "—"),
    _row("407", "Remote arm/disarm", "远程撤布防", _OC, _USER, "OQ/CQ", "远程撤防/远程布防"),
    _row("408", "Quick arm", "快速布防", _OC, _USER, "OP/CL", "撤防/快速布防"),
    _row("409", "Keyswitch open/close", "钥匙开关撤布防", _OC, _USER, "OS/CS", "钥匙撤防/钥匙布防"),
    _row("411", "Callback request made", "回拨请求", _OTHER, _USER, "", "—"),
    _row("412", "Successful download/access", "远程编程成功", _OTHER, _USER, "RB", "—"),
    _row("413", "Unsuccessful access", "远程访问失败", _OTHER, _USER, "", "—"),
    # pysiaalarm maps 414 to YT (battery trouble), which a shutdown command is not.
    _row("414", "System shutdown command received", "收到系统关闭命令", _OTHER, _USER, "", "—"),
    _row("415", "Dialer shutdown command received", "收到拨号器关闭命令", _OTHER, _USER, "", "—"),
    _row("416", "Successful upload", "上传成功", _OTHER, _ZONE, "", "—"),
    _row("421", "Access denied", "门禁拒绝通行", _OTHER, _USER, "DD", "—"),
    _row("422", "Access report by user", "用户通行记录", _OTHER, _USER, "", "—"),
    _row("423", "Forced access", "门被强行打开", _BURGLARY, _ZONE, "DF"),
    _row("424", "Egress denied", "拒绝出门", _OTHER, _USER, "", "—"),
    _row("425", "Egress granted", "准予出门", _OTHER, _USER, "", "—"),
    _row("426", "Access door propped open", "门未关超时", _OTHER, _ZONE, "", "门未关超时/门已关闭"),
    _row("427", "Access point DSM trouble", "门磁监测故障", _TROUBLE, _ZONE),
    _row("428", "Access point RTE trouble", "出门按钮故障", _TROUBLE, _ZONE),
    _row("429", "Access program mode entry", "门禁进入编程", _OTHER, _USER, "", "—"),
    _row("430", "Access program mode exit", "门禁退出编程", _OTHER, _USER, "", "—"),
    _row("431", "Access threat level change", "门禁威胁等级变更", _OTHER, _USER, "", "—"),
    _row("432", "Access relay/trigger failure", "门禁继电器故障", _TROUBLE, _ZONE),
    _row("433", "Access RTE shunt", "出门按钮旁路", _OTHER, _ZONE, "", "出门按钮旁路/解除旁路"),
    _row("434", "Access DSM shunt", "门磁旁路", _OTHER, _ZONE, "", "门磁旁路/解除旁路"),
    # CG/OG are "partially armed/disarmed". §3.4 (pysiaalarm) sends CG for a 441
    # opening and OG for a 456 closing, telling the operator the opposite of what
    # happened; the opening maps to OG and the closing to CG here.
    _row("441", "Armed STAY", "留守布防", _OC, _USER, "OG/CG", "留守撤防/留守布防"),
    _row("442", "Keyswitch armed STAY", "钥匙留守布防", _OC, _USER, "", "钥匙撤防/钥匙留守布防"),
    _row("450", "Exception open/close", "异常撤布防", _OC, _USER, "", "异常撤防/异常布防"),
    _row("451", "Early open/close", "提前撤布防", _OC, _USER, "", "提前撤防/提前布防"),
    _row("452", "Late open/close", "推迟撤布防", _OC, _USER, "", "推迟撤防/推迟布防"),
    _row("453", "Failed to open", "未按时撤防", _OC, _USER, "OI", "—"),
    _row("454", "Failed to close", "未按时布防", _OC, _USER, "CI", "—"),
    _row("455", "Auto-arm failed", "自动布防失败", _OC, _USER, "", "—"),
    _row("456", "Partial arm", "部分布防", _OC, _USER, "OG/CG", "部分撤防/部分布防"),
    _row("457", "Exit error (user)", "退出错误（用户）", _OC, _USER, "EE", "—"),
    _row("458", "User on premises", "用户在场", _OC, _USER, "", "用户到场/用户离场"),
    _row("459", "Recent close", "刚布防即报警", _OC, _USER, "", "—"),
    # Repeated wrong codes are someone trying the keypad: treated like tampering.
    _row("461", "Wrong code entry", "密码错误", _TAMPER, _ZONE, "DD", "—"),
    _row("462", "Legal code entry", "密码正确输入", _OTHER, _USER, "", "—"),
    _row("463", "Re-arm after alarm", "报警后重新布防", _OC, _USER, "", "—"),
    _row("464", "Auto-arm time extended", "自动布防时间延长", _OC, _USER, "", "—"),
    _row("465", "Panic alarm reset", "紧急报警复位", _OTHER, _ZONE, "", "—"),
    _row("466", "Service on/off premises", "维修到离场", _OTHER, _USER, "", "维修到场/维修离场"),
    # 5xx disables and bypasses.
    _row("501", "Access reader disable", "读卡器禁用", _OTHER, _ZONE, "", "读卡器禁用/读卡器启用"),
    _row("520", "Sounder/relay disable", "警号/继电器禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("521", "Bell 1 disable", "警铃1禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("522", "Bell 2 disable", "警铃2禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("523", "Alarm relay disable", "报警继电器禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("524", "Trouble relay disable", "故障继电器禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("525", "Reversing relay disable", "反极继电器禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("526", "NAC 3 disable", "第3路声光输出禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("527", "NAC 4 disable", "第4路声光输出禁用", _OTHER, _ZONE, "", "禁用/启用"),
    _row("531", "Module added", "模块添加", _OTHER, _ZONE, "", "—"),
    _row("532", "Module removed", "模块移除", _OTHER, _ZONE, "", "—"),
    # A disabled dialer or radio means alarms will not reach the centre.
    _row("551", "Dialer disabled", "拨号器禁用", _COMM, _ZONE, "", "拨号器禁用/拨号器启用"),
    _row("552", "Radio transmitter disabled", "无线发射机禁用", _COMM, _ZONE, "", "禁用/启用"),
    _row("553", "Remote up/download disabled", "远程上传下载禁用", _COMM, _ZONE, "", "禁用/启用"),
    _row("570", "Zone/sensor bypass", "防区旁路", _OTHER, _ZONE, "BB/BU", "防区旁路/解除旁路"),
    # §2.3 names FB for 571; its restore is SIA's fire unbypass, FU.
    _row("571", "Fire bypass", "消防防区旁路", _OTHER, _ZONE, "FB/FU", "消防防区旁路/解除旁路"),
    _row("572", "24-hour zone bypass", "24小时防区旁路", _OTHER, _ZONE, "", "旁路/解除旁路"),
    # SpanDSP marks 573 as a user; a bypass names the zone bypassed, like 570-577.
    _row("573", "Burglary bypass", "盗警防区旁路", _OTHER, _ZONE, "", "旁路/解除旁路"),
    _row("574", "Group bypass", "防区组旁路", _OTHER, _ZONE, "", "旁路/解除旁路"),
    _row("575", "Swinger bypass", "频繁触发自动旁路", _OTHER, _ZONE, "", "旁路/解除旁路"),
    _row("576", "Access zone shunt", "门禁防区屏蔽", _OTHER, _ZONE, "", "屏蔽/解除屏蔽"),
    _row("577", "Access point bypass", "门禁点旁路", _OTHER, _ZONE, "", "旁路/解除旁路"),
    # 6xx tests and logs. Periodic reports carry no zone (Trikdis fills CCC with 999).
    _row("601", "Manual trigger test", "手动测试", _TEST, _ZONE, "RX", "—"),
    _row("602", "Periodic test", "定期测试", _TEST, _NONE, "RP", "—"),
    _row("603", "Periodic RF transmission", "无线定期发送", _TEST, _ZONE, "", "—"),
    _row("604", "Fire test", "消防测试", _TEST, _USER, "FX/FK", "消防测试开始/消防测试结束"),
    _row("605", "Status report to follow", "后续状态报告", _OTHER, _NONE, "", "—"),
    _row("606", "Listen-in to follow", "后续现场监听", _OTHER, _NONE, "", "—"),
    _row("607", "Walk test mode", "步测模式", _TEST, _USER, "", "进入步测/退出步测"),
    _row("608", "Periodic test, trouble present", "定期测试（有故障）", _TEST, _NONE, "TX", "—"),
    _row("609", "Video transmitter on", "视频发送", _OTHER, _ZONE, "", "视频开始发送/视频停止发送"),
    _row("611", "Point tested OK", "测试点正常", _TEST, _ZONE, "", "—"),
    _row("612", "Point not tested", "测试点未测试", _TEST, _ZONE, "", "—"),
    _row("613", "Intrusion zone walk tested", "入侵防区已步测", _TEST, _ZONE, "", "—"),
    _row("614", "Fire zone walk tested", "消防防区已步测", _TEST, _ZONE, "", "—"),
    _row("615", "Panic zone walk tested", "紧急防区已步测", _TEST, _ZONE, "", "—"),
    _row("616", "Service request", "维修请求", _OTHER, _ZONE, "", "—"),
    _row("621", "Event log reset", "事件记录清除", _OTHER, _NONE, "", "—"),
    _row("622", "Event log 50% full", "事件记录已满50%", _OTHER, _NONE, "JL", "—"),
    _row("623", "Event log 90% full", "事件记录已满90%", _OTHER, _NONE, "JL", "—"),
    _row("624", "Event log overflow", "事件记录溢出", _OTHER, _NONE, "JO", "—"),
    _row("625", "Time/date reset", "时间日期重设", _OTHER, _USER, "JT", "—"),
    _row("626", "Time/date inaccurate", "时间日期不准", _OTHER, _ZONE, "JD", "—"),
    _row("627", "Program mode entry", "进入编程模式", _OTHER, _ZONE, "LB", "—"),
    _row("628", "Program mode exit", "退出编程模式", _OTHER, _ZONE, "LX", "—"),
    _row("629", "32-hour event log marker", "32小时事件记录标记", _OTHER, _NONE, "", "—"),
    _row("630", "Schedule change", "时间表变更", _OTHER, _ZONE, "", "—"),
    _row("631", "Exception schedule change", "例外时间表变更", _OTHER, _ZONE, "", "—"),
    _row("632", "Access schedule change", "门禁时间表变更", _OTHER, _ZONE, "JS", "—"),
    # Senior watch reports an elderly resident's inactivity: about a person.
    _row("641", "Senior watch trouble", "老人看护异常", _MEDICAL, _ZONE),
    _row("642", "Latch-key supervision", "儿童到家监护", _OTHER, _USER, "", "—"),
    _row("651", "Reserved for Ademco", "安定宝保留", _OTHER, _ZONE),
    _row("652", "Reserved for Ademco", "安定宝保留", _OTHER, _USER),
    _row("653", "Reserved for Ademco", "安定宝保留", _OTHER, _USER),
    _row("654", "System inactivity", "系统长时间无活动", _OTHER, _ZONE, "NA", "—"),
    # Vendor extensions named in §2.3: Hengbo (S-HB) and Hikvision (S-HIK).
    _hengbo("485", "RS-485 link to panel lost", "485总线断开", _COMM, _NONE, "", "485断开/485恢复"),
    _hengbo("700", "Link hung up", "链路挂起", _COMM, _NONE, "", "链路挂起/链路恢复"),
    *(
        _hengbo(code, f"Panel type: {en}", f"主机类型：{zh}", _OTHER, _NONE, "", "—")
        for code, en, zh in _HENGBO_PANEL_TYPES
    ),
    _hengbo("944", "Panel offline", "主机断线", _COMM, _NONE, "", "—"),
    _hengbo("946", "Panel online", "主机上线", _COMM, _NONE, "", "—"),
    _hikvision("148", "Device moved", "设备移位报警", _TAMPER, _ZONE),
    _hikvision("149", "Detector masked", "遮挡报警", _TAMPER, _ZONE),
    _hikvision("750", "Drilling", "钻孔报警", _BURGLARY, _ZONE, "IA/IR"),
    _hikvision("948", "E-mail sending failed", "邮件发送失败", _COMM, _NONE, "", "—"),
    _hikvision("949", "Network camera offline", "网络摄像机掉线", _COMM, _ZONE),
    # 9xx downloads. §2.3 leaves them unmapped (pysiaalarm's RR for 900 means power-up).
    _row("900", "Download abort", "下载中止", _OTHER, _USER, "", "—"),
    _row("901", "Download start/end", "远程下载", _OTHER, _USER, "", "下载开始/下载结束"),
    _row("902", "Download interrupted", "下载中断", _OTHER, _USER, "", "—"),
    _row("910", "Auto-close with bypass", "带旁路自动布防", _OC, _USER, "", "—"),
    _row("911", "Bypass closing", "旁路布防", _OC, _USER, "", "—"),
    _row("999", "32-hour no read of event log", "32小时未读取事件记录", _OTHER, _USER, "", "—"),
)

CID_CODES: Final[Mapping[str, CidCode]] = MappingProxyType(
    {row.code: row for row in sorted(_ROWS, key=lambda row: row.code)}
)
