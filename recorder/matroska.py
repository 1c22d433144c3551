"""Matroska pieces that writing a segment and exporting a recording share.

Matroska's millisecond time base (`MS`) and Opus: its identification header (`opus_head`, the
CodecPrivate of an A_OPUS track), its packet duration from the TOC byte (`opus_packet_samples`),
and an Opus stream for a PyAV output (`add_opus_stream`). PyAV only copies an Opus stream's
CodecPrivate from an existing stream, so a template stream is read from a tiny Matroska header
built in memory (`opus_template_stream`): no Opus encoder or decoder is ever opened.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from typing import Any

import av
from av.container import OutputContainer

__all__ = [
    "MS",
    "add_opus_stream",
    "opus_head",
    "opus_packet_samples",
    "opus_template_stream",
]

MS = Fraction(1, 1000)


def opus_head(channels: int = 2, input_sample_rate: int = 48_000, pre_skip: int = 0) -> bytes:
    """The Opus identification header (RFC 7845 §5.1), Matroska's CodecPrivate for A_OPUS.

    RTP Opus has no pre-skip: the stream is decodable from any packet, so pre_skip is 0.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_sample_rate, 0, 0)


_FRAME_SAMPLES_48K = (
    [480, 960, 1920, 2880] * 3  # SILK: 10, 20, 40, 60 ms
    + [480, 960] * 2  # hybrid: 10, 20 ms
    + [120, 240, 480, 960] * 4  # CELT: 2.5, 5, 10, 20 ms
)


def opus_packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    per_frame = _FRAME_SAMPLES_48K[toc >> 3]
    code = toc & 0x03
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = packet[1] & 0x3F if len(packet) > 1 else 0
    return per_frame * count


def _vint(value: int) -> bytes:
    for length in range(1, 9):
        if value < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | value).to_bytes(length, "big")
    raise ValueError("EBML size too large")


def _element(element_id: bytes, body: bytes) -> bytes:
    return element_id + _vint(len(body)) + body


def _uint(element_id: bytes, value: int) -> bytes:
    return _element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _opus_template_bytes(extradata: bytes, sample_rate: int, channels: int) -> bytes:
    """A minimal Matroska file with one A_OPUS track and an empty cluster."""
    ebml = _element(
        b"\x1a\x45\xdf\xa3",
        _uint(b"\x42\x86", 1)
        + _uint(b"\x42\xf7", 1)
        + _uint(b"\x42\xf2", 4)
        + _uint(b"\x42\xf3", 8)
        + _element(b"\x42\x82", b"matroska")
        + _uint(b"\x42\x87", 4)
        + _uint(b"\x42\x85", 2),
    )
    audio = _element(b"\xb5", struct.pack(">d", float(sample_rate))) + _uint(b"\x9f", channels)
    entry = (
        _uint(b"\xd7", 1)
        + _uint(b"\x73\xc5", 1)
        + _uint(b"\x83", 2)
        + _element(b"\x86", b"A_OPUS")
        + _element(b"\x63\xa2", extradata)
        + _element(b"\xe1", audio)
    )
    segment = _element(
        b"\x18\x53\x80\x67",
        _element(b"\x15\x49\xa9\x66", _uint(b"\x2a\xd7\xb1", 1_000_000))
        + _element(b"\x16\x54\xae\x6b", _element(b"\xae", entry))
        + _element(b"\x1f\x43\xb6\x75", _uint(b"\xe7", 0)),
    )
    return ebml + segment


def opus_template_stream(
    extradata: bytes, sample_rate: int = 48_000, channels: int = 2
) -> tuple[Any, Any]:
    """(input container, its Opus stream) to pass to `add_stream_from_template`; keep the
    container referenced until the output's header is written."""
    container = av.open(io.BytesIO(_opus_template_bytes(extradata, sample_rate, channels)), "r")
    return container, container.streams.audio[0]


def add_opus_stream(container: OutputContainer, extradata: bytes, channels: int) -> Any:
    template_container, template = opus_template_stream(extradata, 48_000, channels)
    try:
        stream = container.add_stream_from_template(template, opaque=True)
    finally:
        template_container.close()
    stream.time_base = MS
    return stream
