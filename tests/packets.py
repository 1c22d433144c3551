"""Packet factories for tests of the pure forwarding cores."""

from __future__ import annotations

from collections.abc import Callable

from sfu.rtp import RtpPacketView, build_rtp, parse_rtp


def vp8_payload(
    *, keyframe: bool, start: bool = True, size: int = 40, picture_id: int = 0
) -> bytes:
    """A VP8 RTP payload: descriptor with picture id, then the payload header byte when starting."""
    descriptor = bytes([0x90 if start else 0x80, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF])
    header = bytes([0x00 if keyframe else 0x01]) if start else b""
    body = descriptor + header
    return body + bytes(max(0, size - len(body)))


def rtp(
    seq: int,
    timestamp: int = 0,
    *,
    ssrc: int = 1111,
    payload: bytes = b"\x00" * 20,
    payload_type: int = 96,
    marker: bool = False,
    padding: int = 0,
    extensions: list[tuple[int, bytes]] | None = None,
) -> bytes:
    if padding:
        payload = payload + bytes(padding - 1) + bytes([padding])
    return build_rtp(
        payload_type=payload_type,
        seq=seq,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=payload,
        marker=marker,
        padding=bool(padding),
        extensions=extensions,
    )


def view(seq: int, timestamp: int = 0, **kwargs: object) -> RtpPacketView:
    packet = parse_rtp(rtp(seq, timestamp, **kwargs))  # type: ignore[arg-type]
    assert packet is not None
    return packet


def lose_one_packet(transport: object, predicate: Callable[[bytes], bool]) -> list[int]:
    """Make `transport.send_rtp` lose the first packet matching `predicate` (before SRTP, as a
    network would). Returns a list that receives the lost packet's sequence number."""
    original = transport.send_rtp  # type: ignore[attr-defined]
    lost: list[int] = []

    def lossy(data: bytes) -> bool:
        if not lost and predicate(data):
            lost.append(int.from_bytes(data[2:4], "big"))
            return True
        return bool(original(data))

    transport.send_rtp = lossy  # type: ignore[attr-defined]
    return lost


def ssrc_of(data: bytes) -> int:
    return int.from_bytes(data[8:12], "big")
