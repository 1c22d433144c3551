"""Packet factories for tests of the pure forwarding cores."""

from __future__ import annotations

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
