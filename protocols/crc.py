"""CRC-16/ARC, the checksum of SIA DC-09 frames (DC-07's "CRC-16").

Polynomial 0x8005 processed LSB-first (reflected constant 0xA001), initial
value 0, no final XOR; check value for b"123456789" is 0xBB3D. It is not
CRC-CCITT, which several hobby parsers use by mistake (PROTOCOLS.md §1.2).
The table is computed here rather than copied: DC-07's printed table has a
wrong entry.
"""

from __future__ import annotations


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_arc(data: bytes, crc: int = 0) -> int:
    """Return the CRC-16/ARC of ``data``, continuing from ``crc``."""
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
