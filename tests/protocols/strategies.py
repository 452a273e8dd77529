"""Hypothesis strategies shared by the protocol tests."""

from __future__ import annotations

from hypothesis import strategies as st

from protocols.dc09 import Header

_HEX = "0123456789ABCDEF"
_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="[]"),
    max_size=40,
)


@st.composite
def frame_bodies(draw: st.DrawFn) -> tuple[bytes, Header, bytes]:
    """A DC-09 body with the header it should parse to and its content bytes."""
    token = draw(st.sampled_from(["SIA-DCS", "ADM-CID", "NULL", "*SIA-DCS", "ACK", "HENG-BO"]))
    sequence = draw(st.from_regex(r"\A[0-9]{4}\Z"))
    receiver = draw(st.none() | st.text(_HEX, min_size=1, max_size=6))
    account = draw(st.none() | st.text("0123456789ABCDEFXYZ", min_size=1, max_size=16))
    # Without a "#" account, "L0A0" reads as prefix 0 and the NAK-style account
    # A0, so such a prefix would not round trip; no panel sends one.
    line_digits = _HEX if account is not None else _HEX.replace("A", "")
    line = draw(st.none() | st.text(line_digits, max_size=6))
    xdata = draw(st.lists(st.tuples(st.sampled_from("AHILMNRSV"), _TEXT), max_size=3))
    timestamp = draw(st.sampled_from([b"", b"_09:12:30,02-20-2023"]))
    data = draw(_TEXT).encode()
    content = data + b"]" + b"".join(b"[" + k.encode() + v.encode() + b"]" for k, v in xdata)
    content += timestamp
    head = b'"' + token.encode() + b'"' + sequence.encode()
    head += b"" if receiver is None else b"R" + receiver.encode()
    head += b"" if line is None else b"L" + line.encode()
    head += b"" if account is None else b"#" + account.encode()
    return head + b"[" + content, Header(token, sequence, receiver, line, account), content


@st.composite
def random_splits(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    """``stream`` cut at random places."""
    cuts = sorted(draw(st.sets(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
