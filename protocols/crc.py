"""CRC-16/ARC, the checksum of SIA DC-09 frames (DC-07's "CRC-16").

Polynomial 0x8005 processed LSB-first (reflected constant 0xA001), initial
value 0, no final XOR; check value for b"123456789" is 0xBB3D. It is not
CRC-CCITT, which several hobby parsers use by mistake (PROTOCOLS.md §1.2).
Computed by fastcrc's compiled code: a table-driven loop in Python costs
about 4 µs a frame, twenty times as much, and every frame needs two (the
frame and its answer). Tests check it against a bitwise reference.
"""

from __future__ import annotations

from typing import Final

from fastcrc import crc16

# crc16_arc(data, initial=None) -> int; ``initial`` continues a running CRC.
crc16_arc: Final = crc16.arc
