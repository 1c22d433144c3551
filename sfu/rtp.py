"""Minimal RTP header reading and writing for forwarding.

The forwarding path never re-serialises a whole packet: it reads the fixed header fields it needs,
keeps the payload as it came, and writes a fresh 12-byte header per subscriber.
"""

from __future__ import annotations

import struct

RTP_HEADER = struct.Struct("!BBHII")
RTP_HEADER_SIZE = 12
ONE_BYTE_EXTENSION_PROFILE = 0xBEDE
TWO_BYTE_EXTENSION_PROFILE_MASK = 0xFFF0
TWO_BYTE_EXTENSION_PROFILE = 0x1000


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192-223 in the second byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223


class RtpPacketView:
    """The fields of one received RTP packet that forwarding needs.

    `payload` includes any padding; `padding_size` says how much of it is padding.
    """

    __slots__ = (
        "ext_seq",
        "extension",
        "extension_profile",
        "is_keyframe",
        "marker",
        "padding_size",
        "payload",
        "payload_type",
        "seq",
        "ssrc",
        "timestamp",
    )

    def __init__(
        self,
        *,
        marker: bool,
        payload_type: int,
        seq: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        padding_size: int = 0,
        extension_profile: int = 0,
        extension: bytes = b"",
    ) -> None:
        self.marker = marker
        self.payload_type = payload_type
        self.seq = seq
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.padding_size = padding_size
        self.extension_profile = extension_profile
        self.extension = extension
        self.ext_seq = -1
        self.is_keyframe = False

    @property
    def is_padding_only(self) -> bool:
        return len(self.payload) <= self.padding_size

    def __repr__(self) -> str:
        return (
            f"RtpPacketView(ssrc={self.ssrc}, pt={self.payload_type}, seq={self.seq}, "
            f"ts={self.timestamp}, marker={self.marker}, payload={len(self.payload)}B)"
        )


def parse_rtp(data: bytes) -> RtpPacketView | None:
    """Read an RTP packet; None if it is not valid RTP."""
    size = len(data)
    if size < RTP_HEADER_SIZE:
        return None
    first, second, seq, timestamp, ssrc = RTP_HEADER.unpack_from(data, 0)
    if first >> 6 != 2:
        return None
    offset = RTP_HEADER_SIZE + 4 * (first & 0x0F)
    extension_profile = 0
    extension = b""
    if first & 0x10:
        if offset + 4 > size:
            return None
        extension_profile = (data[offset] << 8) | data[offset + 1]
        extension_words = (data[offset + 2] << 8) | data[offset + 3]
        start = offset + 4
        offset = start + 4 * extension_words
        if offset > size:
            return None
        extension = data[start:offset]
    padding_size = 0
    if first & 0x20:
        padding_size = data[-1]
        if padding_size == 0 or offset + padding_size > size:
            return None
    return RtpPacketView(
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        seq=seq,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=data[offset:],
        padding_size=padding_size,
        extension_profile=extension_profile,
        extension=extension,
    )


def read_header_extension(profile: int, block: bytes, wanted_id: int) -> bytes | None:
    """Return the value of header extension `wanted_id` (RFC 8285), or None."""
    size = len(block)
    index = 0
    if profile == ONE_BYTE_EXTENSION_PROFILE:
        while index < size:
            byte = block[index]
            if byte == 0:  # padding
                index += 1
                continue
            ext_id = byte >> 4
            length = (byte & 0x0F) + 1
            if ext_id == 15:
                return None
            start = index + 1
            if ext_id == wanted_id:
                return block[start : start + length] if start + length <= size else None
            index = start + length
    elif profile & TWO_BYTE_EXTENSION_PROFILE_MASK == TWO_BYTE_EXTENSION_PROFILE:
        while index + 1 < size:
            ext_id = block[index]
            if ext_id == 0:
                index += 1
                continue
            length = block[index + 1]
            start = index + 2
            if ext_id == wanted_id:
                return block[start : start + length] if start + length <= size else None
            index = start + length
    return None


def build_one_byte_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """Build an RFC 8285 one-byte header extension block (profile + length + padded body)."""
    body = bytearray()
    for ext_id, value in elements:
        if not 1 <= ext_id <= 14 or not 1 <= len(value) <= 16:
            raise ValueError("one-byte header extension out of range")
        body.append((ext_id << 4) | (len(value) - 1))
        body += value
    while len(body) % 4:
        body.append(0)
    return struct.pack("!HH", ONE_BYTE_EXTENSION_PROFILE, len(body) // 4) + bytes(body)


def build_rtp(
    *,
    payload_type: int,
    seq: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    padding: bool = False,
    extensions: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """Build a whole RTP packet; `payload` already contains any padding when `padding` is set."""
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extensions else 0)
    header = RTP_HEADER.pack(
        first, (0x80 if marker else 0) | payload_type, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )
    if extensions:
        header += build_one_byte_extensions(extensions)
    return header + payload
