"""Real pre-encoded media for synthetic participants: VP8 simulcast layers and Opus audio.

A load test must not spend its CPU on encoding, yet the SFU should see real bitstreams (real VP8
keyframes and inter frames with realistic sizes, real Opus packets). So the media is encoded once
with PyAV and cached on disk; later runs read the cache files and never encode.

Content
    Video is FFmpeg's ``testsrc2`` pattern (colour bars, a moving box, gradients and a running
    frame counter) with a little temporal noise, like a camera sensor adds. It is rendered at
    1280x720 and scaled down for the lower layers, so the three layers show the same picture like
    a browser's simulcast. Each layer is encoded by libvpx (VP8, real-time, constant bit rate, no
    alt-ref frames, no frame dropping) with a keyframe on the first frame and every 2 seconds.
    Audio is a 440 Hz tone whose amplitude swings at 3 Hz (roughly syllable rate, so levels look
    like speech), encoded by libopus (48 kHz mono, 20 ms packets, constrained VBR ~32 kbit/s).

Cache files
    One file per video layer and one for the audio, in ``cache_dir`` (default
    ``$BALIE_MEDIA_CACHE`` or ``~/.cache/digitale-balie/media``), named after the parameters and
    the format version, e.g. ``vp8-f-1280x720-25fps-1500kbps-10s-v1.bin`` and
    ``opus-48000hz-1ch-32kbps-10s-v1.bin``. All integers are big-endian::

        offset  size  field
        0       4     magic b"DBMC" (Digitale Balie media cache)
        4       2     format version (1)
        6       1     kind: 1 = VP8, 2 = Opus
        7       1     reserved, 0
        8       2     width in pixels (0 for audio)
        10      2     height in pixels (0 for audio)
        12      4     rate: frames per second (video) or sample rate in Hz (audio)
        16      4     frame count N
        20      ...   N records: u32 length L, u8 flags (bit 0: keyframe), L bytes of frame data
        end-32  32    SHA-256 of every byte before it

    Files are written to a temporary file in the same directory and renamed into place, so a
    reader never sees half a file. A file that is truncated, corrupt (checksum or length prefixes
    do not add up) or describes other parameters is encoded again and replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter
from av.video.frame import PictureType

from common.files import write_atomic

__all__ = [
    "AUDIO_FRAME_MS",
    "VIDEO_FPS",
    "EncodedFrame",
    "EncodedLayer",
    "MediaLibrary",
    "load_media",
    "vp8_payloads",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAGIC = b"DBMC"
KIND_VP8 = 1
KIND_OPUS = 2
FLAG_KEYFRAME = 0x01
_HEADER = struct.Struct(">4sHBBHHII")
_RECORD = struct.Struct(">IB")
_DIGEST_SIZE = 32

VIDEO_FPS = 25
VIDEO_GOP = 2 * VIDEO_FPS  # a keyframe every 2 seconds
AUDIO_SAMPLE_RATE = 48_000
AUDIO_CHANNELS = 1
AUDIO_FRAME_MS = 20
AUDIO_FRAME_SAMPLES = AUDIO_SAMPLE_RATE * AUDIO_FRAME_MS // 1000  # 960
AUDIO_BIT_RATE = 32_000
VP8_DESCRIPTOR_SIZE = 4

CACHE_ENV = "BALIE_MEDIA_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/digitale-balie/media")

# The moving pattern, with light temporal noise so inter frames carry real residuals.
_VIDEO_SOURCE = ("testsrc2", "size=1280x720:rate=25")
_VIDEO_NOISE = "alls=6:allf=t"
# 440 Hz tone, amplitude modulated at 3 Hz between 0.03 and 0.30 of full scale.
_AUDIO_EXPRESSION = "0.3*sin(2*PI*440*t)*(0.55+0.45*sin(2*PI*3*t))"


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes  # one VP8 frame (or one Opus packet)
    keyframe: bool  # VP8 keyframe (always False for Opus)


@dataclass(frozen=True)
class EncodedLayer:
    rid: str  # "q", "h", "f"
    width: int
    height: int
    fps: int  # 25
    frames: tuple[EncodedFrame, ...]


@dataclass(frozen=True)
class MediaLibrary:
    video_layers: tuple[EncodedLayer, ...]  # q, h, f in that order
    audio_frames: tuple[EncodedFrame, ...]  # Opus, 48 kHz, 20 ms each
    seconds: float


@dataclass(frozen=True)
class _LayerSpec:
    rid: str
    width: int
    height: int
    bit_rate: int


LAYER_SPECS: tuple[_LayerSpec, ...] = (
    _LayerSpec("q", 320, 180, 150_000),
    _LayerSpec("h", 640, 360, 500_000),
    _LayerSpec("f", 1280, 720, 1_500_000),
)


class CacheError(Exception):
    """A cache file is missing, truncated, corrupt or describes other parameters."""


# --- public API ---------------------------------------------------------------------------------


def load_media(cache_dir: Path | None = None, seconds: float = 10.0) -> MediaLibrary:
    """The media library for ``seconds`` of media, read from the cache or encoded once into it."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, not {seconds!r}")
    directory = _cache_directory(cache_dir)
    video_count = _frame_count(seconds, VIDEO_FPS)
    audio_count = _frame_count(seconds, 1000 // AUDIO_FRAME_MS)

    layers: dict[str, tuple[EncodedFrame, ...]] = {}
    missing: list[_LayerSpec] = []
    for spec in LAYER_SPECS:
        path = directory / _video_file_name(spec, seconds)
        try:
            layers[spec.rid] = _read_cache(
                path, KIND_VP8, spec.width, spec.height, VIDEO_FPS, video_count
            )
        except CacheError as error:
            logger.info("media cache %s unusable (%s); encoding", path.name, error)
            missing.append(spec)
    audio_path = directory / _audio_file_name(seconds)
    try:
        audio = _read_cache(audio_path, KIND_OPUS, 0, 0, AUDIO_SAMPLE_RATE, audio_count)
    except CacheError as error:
        logger.info("media cache %s unusable (%s); encoding", audio_path.name, error)
        audio = None

    if missing or audio is None:
        directory.mkdir(parents=True, exist_ok=True)
    if missing:
        started = time.perf_counter()
        encoded = _encode_video(missing, video_count)
        for spec in missing:
            frames = encoded[spec.rid]
            _write_cache(
                directory / _video_file_name(spec, seconds),
                KIND_VP8,
                spec.width,
                spec.height,
                VIDEO_FPS,
                frames,
            )
            layers[spec.rid] = frames
        logger.info(
            "encoded %.3g s of VP8 (%s) in %.2f s",
            seconds,
            ",".join(spec.rid for spec in missing),
            time.perf_counter() - started,
        )
    if audio is None:
        started = time.perf_counter()
        audio = _encode_audio(audio_count)
        _write_cache(audio_path, KIND_OPUS, 0, 0, AUDIO_SAMPLE_RATE, audio)
        logger.info("encoded %.3g s of Opus in %.2f s", seconds, time.perf_counter() - started)

    return MediaLibrary(
        video_layers=tuple(
            EncodedLayer(spec.rid, spec.width, spec.height, VIDEO_FPS, layers[spec.rid])
            for spec in LAYER_SPECS
        ),
        audio_frames=audio,
        seconds=seconds,
    )


def vp8_payloads(frame: bytes, picture_id: int, max_size: int = 1100) -> list[bytes]:
    """Split one VP8 frame into RTP payloads (RFC 7741), each at most ``max_size`` bytes.

    Every payload starts with a 4-byte descriptor: X=1, S=1 on the first payload only, partition
    index 0; then I=1; then the 15-bit picture id with the M bit set. The frame is cut into
    chunks of (nearly) equal size, as few as fit.
    """
    if not frame:
        raise ValueError("empty VP8 frame")
    chunk_limit = max_size - VP8_DESCRIPTOR_SIZE
    if chunk_limit < 1:
        raise ValueError(f"max_size {max_size} leaves no room after the VP8 descriptor")
    pid = picture_id & 0x7FFF
    tail = bytes((0x80, 0x80 | (pid >> 8), pid & 0xFF))  # I=1, then M=1 and the picture id
    count = -(-len(frame) // chunk_limit)
    base, extra = divmod(len(frame), count)
    payloads: list[bytes] = []
    offset = 0
    for index in range(count):
        size = base + (1 if index < extra else 0)
        first = 0x90 if index == 0 else 0x80  # X=1, S=1 on the first only, PID=0
        payloads.append(bytes((first,)) + tail + frame[offset : offset + size])
        offset += size
    return payloads


# --- encoding -----------------------------------------------------------------------------------


def _encode_video(specs: Sequence[_LayerSpec], count: int) -> dict[str, tuple[EncodedFrame, ...]]:
    """Encode ``count`` frames of the test pattern for each layer in ``specs``."""
    graph = av.filter.Graph()
    source = graph.add(*_VIDEO_SOURCE)
    noise = graph.add("noise", _VIDEO_NOISE)
    pixel_format = graph.add("format", "pix_fmts=yuv420p")
    sink = graph.add("buffersink")
    source.link_to(noise)
    noise.link_to(pixel_format)
    pixel_format.link_to(sink)
    graph.configure()

    time_base = Fraction(1, VIDEO_FPS)
    encoders = []
    for spec in specs:
        encoder = av.CodecContext.create("libvpx", "w")
        encoder.width = spec.width
        encoder.height = spec.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = time_base
        encoder.framerate = Fraction(VIDEO_FPS)
        encoder.bit_rate = spec.bit_rate
        encoder.gop_size = VIDEO_GOP
        encoder.thread_count = 2
        encoder.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",  # one packet out per frame in, like WebRTC
            "auto-alt-ref": "0",  # no invisible alt-ref frames
            "error-resilient": "1",
            "drop-threshold": "0",  # never skip a frame
            "keyint_min": str(VIDEO_GOP),
            "minrate": str(spec.bit_rate),  # minrate == maxrate: constant bit rate
            "maxrate": str(spec.bit_rate),
            "bufsize": str(spec.bit_rate),  # one second of buffer, like a browser
        }
        encoder.open()
        encoders.append((spec, encoder))

    frames: dict[str, list[EncodedFrame]] = {spec.rid: [] for spec in specs}
    for index in range(count):
        picture = graph.vpull()
        for spec, encoder in encoders:
            if (picture.width, picture.height) == (spec.width, spec.height):
                scaled = picture
            else:
                scaled = picture.reformat(width=spec.width, height=spec.height)
            scaled.pts = index
            scaled.time_base = time_base
            # testsrc2 marks every frame as I; ask for a keyframe only at each GOP start.
            scaled.pict_type = PictureType.I if index % VIDEO_GOP == 0 else PictureType.NONE
            _collect_vp8(frames[spec.rid], encoder.encode(scaled), spec.rid)
    for spec, encoder in encoders:
        _collect_vp8(frames[spec.rid], encoder.encode(None), spec.rid)

    result: dict[str, tuple[EncodedFrame, ...]] = {}
    for spec in specs:
        layer = frames[spec.rid]
        if len(layer) != count:
            raise RuntimeError(f"libvpx gave {len(layer)} frames for layer {spec.rid}, not {count}")
        if not layer[0].keyframe:
            raise RuntimeError(f"first frame of layer {spec.rid} is not a keyframe")
        result[spec.rid] = tuple(layer)
    return result


def _collect_vp8(out: list[EncodedFrame], packets: Sequence[av.Packet[Any]], rid: str) -> None:
    for packet in packets:
        data = bytes(packet)
        if not data:
            continue
        tag_keyframe = not data[0] & 0x01  # VP8 frame tag: bit 0 clear on keyframes
        if tag_keyframe != packet.is_keyframe:
            raise RuntimeError(
                f"layer {rid} frame {len(out)}: packet says keyframe={packet.is_keyframe}, "
                f"VP8 frame tag says {tag_keyframe}"
            )
        out.append(EncodedFrame(data, tag_keyframe))


def _encode_audio(count: int) -> tuple[EncodedFrame, ...]:
    """Encode ``count`` 20 ms Opus packets of the modulated tone."""
    graph = av.filter.Graph()
    source = graph.add(
        "aevalsrc",
        f"{_AUDIO_EXPRESSION}:s={AUDIO_SAMPLE_RATE}:c=mono:n={AUDIO_FRAME_SAMPLES}",
    )
    sample_format = graph.add("aformat", "sample_fmts=s16:channel_layouts=mono")
    sink = graph.add("abuffersink")
    source.link_to(sample_format)
    sample_format.link_to(sink)
    graph.configure()

    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = AUDIO_SAMPLE_RATE
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = AUDIO_BIT_RATE
    encoder.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
    encoder.options = {
        "application": "voip",
        "frame_duration": str(AUDIO_FRAME_MS),
        "vbr": "constrained",
    }
    encoder.open()

    packets: list[EncodedFrame] = []
    index = 0
    # The encoder's look-ahead delays its output by a few milliseconds; feed until enough came out.
    while len(packets) < count:
        if index < count:
            samples = sink.pull()
            if not isinstance(samples, av.AudioFrame):
                raise RuntimeError("aevalsrc produced a non-audio frame")
            if samples.samples != AUDIO_FRAME_SAMPLES:
                raise RuntimeError(f"aevalsrc gave {samples.samples} samples per frame")
            samples.pts = index * AUDIO_FRAME_SAMPLES
            output = encoder.encode(samples)
        elif index == count:
            output = encoder.encode(None)
        else:
            raise RuntimeError(f"libopus gave {len(packets)} packets, not {count}")
        packets.extend(EncodedFrame(bytes(packet), False) for packet in output if bytes(packet))
        index += 1
    return tuple(packets[:count])


# --- cache files --------------------------------------------------------------------------------


def _cache_directory(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return DEFAULT_CACHE_DIR.expanduser()


def _frame_count(seconds: float, per_second: int) -> int:
    return max(1, round(seconds * per_second))


def _seconds_label(seconds: float) -> str:
    return f"{seconds:g}".replace(".", "_")


def _video_file_name(spec: _LayerSpec, seconds: float) -> str:
    return (
        f"vp8-{spec.rid}-{spec.width}x{spec.height}-{VIDEO_FPS}fps-{spec.bit_rate // 1000}kbps-"
        f"{_seconds_label(seconds)}s-v{FORMAT_VERSION}.bin"
    )


def _audio_file_name(seconds: float) -> str:
    return (
        f"opus-{AUDIO_SAMPLE_RATE}hz-{AUDIO_CHANNELS}ch-{AUDIO_BIT_RATE // 1000}kbps-"
        f"{_seconds_label(seconds)}s-v{FORMAT_VERSION}.bin"
    )


def _serialise(
    kind: int, width: int, height: int, rate: int, frames: Sequence[EncodedFrame]
) -> bytes:
    parts = [_HEADER.pack(MAGIC, FORMAT_VERSION, kind, 0, width, height, rate, len(frames))]
    for frame in frames:
        parts.append(_RECORD.pack(len(frame.data), FLAG_KEYFRAME if frame.keyframe else 0))
        parts.append(frame.data)
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def _parse(
    blob: bytes, kind: int, width: int, height: int, rate: int, count: int
) -> tuple[EncodedFrame, ...]:
    if len(blob) < _HEADER.size + _DIGEST_SIZE:
        raise CacheError("truncated")
    body, digest = blob[:-_DIGEST_SIZE], blob[-_DIGEST_SIZE:]
    if hashlib.sha256(body).digest() != digest:
        raise CacheError("checksum mismatch")
    header = _HEADER.unpack_from(body)
    expected = (MAGIC, FORMAT_VERSION, kind, 0, width, height, rate, count)
    if header != expected:
        raise CacheError(f"header {header} does not match {expected}")
    frames: list[EncodedFrame] = []
    offset = _HEADER.size
    view = memoryview(body)
    for _ in range(count):
        if offset + _RECORD.size > len(body):
            raise CacheError("record header past the end")
        length, flags = _RECORD.unpack_from(body, offset)
        offset += _RECORD.size
        if length == 0 or offset + length > len(body):
            raise CacheError("record length out of range")
        frames.append(EncodedFrame(bytes(view[offset : offset + length]), bool(flags & 1)))
        offset += length
    if offset != len(body):
        raise CacheError("trailing bytes after the last record")
    return tuple(frames)


def _read_cache(
    path: Path, kind: int, width: int, height: int, rate: int, count: int
) -> tuple[EncodedFrame, ...]:
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CacheError("missing") from None
    except OSError as error:
        raise CacheError(f"unreadable: {error}") from error
    return _parse(blob, kind, width, height, rate, count)


def _write_cache(
    path: Path, kind: int, width: int, height: int, rate: int, frames: Sequence[EncodedFrame]
) -> None:
    """Write atomically (see common/files.py)."""
    blob = _serialise(kind, width, height, rate, frames)
    write_atomic(path, blob, mode=0o644)  # the cache may be shared: not private
