"""Pre-encoded media for the load test: real VP8 and Opus, encoded once and cached on disk."""

import shutil
from collections.abc import Sequence
from pathlib import Path

import av
import pytest

from loadtest import media
from loadtest.media import EncodedFrame, MediaLibrary, load_media, vp8_payloads
from sfu.vp8 import vp8_descriptor_size, vp8_is_keyframe, vp8_keyframe_size

# 2.5 s holds a second keyframe (frame 50) while keeping the one-off encode around a second.
SECONDS = 2.5
EXPECTED_NAMES = {
    "vp8-q-320x180-25fps-150kbps-2_5s-v1.bin",
    "vp8-h-640x360-25fps-500kbps-2_5s-v1.bin",
    "vp8-f-1280x720-25fps-1500kbps-2_5s-v1.bin",
    "opus-48000hz-1ch-32kbps-2_5s-v1.bin",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-cache")


@pytest.fixture(scope="module")
def library(cache: Path) -> MediaLibrary:
    return load_media(cache, seconds=SECONDS)


@pytest.fixture
def no_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the cache should have been used instead of encoding")

    monkeypatch.setattr(media, "_encode_video", refuse)
    monkeypatch.setattr(media, "_encode_audio", refuse)


def _bytes_per_second(frames: Sequence[EncodedFrame]) -> float:
    return sum(len(frame.data) for frame in frames) / SECONDS


def test_the_three_layers_are_q_h_f_with_their_sizes_and_25_frames_per_second(library):
    layers = [(layer.rid, layer.width, layer.height, layer.fps) for layer in library.video_layers]
    assert layers == [("q", 320, 180, 25), ("h", 640, 360, 25), ("f", 1280, 720, 25)]
    assert library.seconds == SECONDS
    for layer in library.video_layers:
        assert len(layer.frames) == round(SECONDS * 25)
        assert all(frame.data for frame in layer.frames)


def test_bit_rates_increase_from_q_to_f_and_stay_near_their_targets(library):
    rates = [_bytes_per_second(layer.frames) * 8 for layer in library.video_layers]
    assert rates[0] < rates[1] < rates[2]
    for rate, target in zip(rates, (150_000, 500_000, 1_500_000), strict=True):
        assert 0.5 * target < rate < 1.5 * target, (rate, target)


def test_every_layer_starts_with_a_keyframe_and_repeats_it_every_two_seconds(library):
    for layer in library.video_layers:
        keyframes = [index for index, frame in enumerate(layer.frames) if frame.keyframe]
        assert keyframes == [0, 50], layer.rid
        for frame in layer.frames:  # the flag agrees with the VP8 frame tag (bit 0 clear = key)
            assert frame.keyframe == (not frame.data[0] & 0x01)
        # Real inter frames: much smaller than the keyframe, but not empty.
        inter = sorted(len(frame.data) for frame in layer.frames if not frame.keyframe)
        assert 0 < inter[len(inter) // 2] < len(layer.frames[0].data)


def test_a_keyframe_carries_the_layer_size_in_its_vp8_header(library):
    for layer in library.video_layers:
        first = vp8_payloads(layer.frames[0].data, picture_id=0)[0]
        assert vp8_keyframe_size(first) == (layer.width, layer.height)


def test_the_vp8_frames_decode_with_pyav_into_pictures_of_the_layer_size(library):
    for layer in library.video_layers:
        decoder = av.CodecContext.create("vp8", "r")
        pictures = []
        for frame in layer.frames[:10]:  # the keyframe and the inter frames that follow it
            pictures.extend(decoder.decode(av.Packet(frame.data)))
        assert len(pictures) == 10, layer.rid
        assert {(picture.width, picture.height) for picture in pictures} == {
            (layer.width, layer.height)
        }


def test_opus_has_one_packet_per_20_ms_at_about_32_kbit_per_second(library):
    frames = library.audio_frames
    assert len(frames) == round(SECONDS / 0.02)
    assert not any(frame.keyframe for frame in frames)
    assert 20_000 < _bytes_per_second(frames) * 8 < 45_000
    assert len({len(frame.data) for frame in frames}) > 1  # variable bit rate, like speech
    decoder = av.CodecContext.create("opus", "r")
    samples = sum(
        decoded.samples for frame in frames[:5] for decoded in decoder.decode(av.Packet(frame.data))
    )
    assert samples == 5 * 960


def test_the_first_call_writes_one_named_cache_file_per_layer_and_for_the_audio(library, cache):
    names = {path.name for path in cache.iterdir()}
    assert names == EXPECTED_NAMES  # and no temporary files left behind
    for name in names:
        blob = (cache / name).read_bytes()
        assert blob[:4] == b"DBMC"


def test_a_second_call_reads_the_cache_without_encoding(library, cache, tmp_path, no_encoding):
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    assert load_media(copy, seconds=SECONDS) == library


def test_the_cache_directory_defaults_to_the_environment_variable(
    library, cache, monkeypatch, no_encoding
):
    monkeypatch.setenv("BALIE_MEDIA_CACHE", str(cache))
    assert load_media(seconds=SECONDS) == library


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty"])
def test_a_damaged_cache_file_is_detected_and_only_that_file_is_encoded_again(
    library, cache, tmp_path, monkeypatch, damage
):
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    damaged = copy / "vp8-f-1280x720-25fps-1500kbps-2_5s-v1.bin"
    blob = bytearray(damaged.read_bytes())
    if damage == "flip a byte":
        blob[len(blob) // 2] ^= 0x01
    elif damage == "truncate":
        del blob[len(blob) // 2 :]
    else:
        blob.clear()
    damaged.write_bytes(bytes(blob))

    encoded_layers: list[str] = []
    real_encode_video = media._encode_video

    def spy(specs, count):
        encoded_layers.extend(spec.rid for spec in specs)
        return real_encode_video(specs, count)

    def refuse_audio(count):
        raise AssertionError("the audio cache is intact")

    monkeypatch.setattr(media, "_encode_video", spy)
    monkeypatch.setattr(media, "_encode_audio", refuse_audio)
    regenerated = load_media(copy, seconds=SECONDS)

    assert encoded_layers == ["f"]
    assert regenerated.video_layers[:2] == library.video_layers[:2]
    assert len(regenerated.video_layers[2].frames) == len(library.video_layers[2].frames)
    assert damaged.read_bytes() != bytes(blob)
    assert {path.name for path in copy.iterdir()} == EXPECTED_NAMES

    monkeypatch.setattr(media, "_encode_video", refuse_audio)  # now the repaired file is read
    assert load_media(copy, seconds=SECONDS) == regenerated


def test_a_cache_file_for_other_parameters_is_not_accepted(library, cache):
    blob = (cache / "vp8-q-320x180-25fps-150kbps-2_5s-v1.bin").read_bytes()
    frames = media._parse(blob, media.KIND_VP8, 320, 180, 25, round(SECONDS * 25))
    assert frames == library.video_layers[0].frames
    with pytest.raises(media.CacheError):
        media._parse(blob, media.KIND_VP8, 640, 360, 25, round(SECONDS * 25))
    with pytest.raises(media.CacheError):
        media._parse(blob, media.KIND_VP8, 320, 180, 25, round(SECONDS * 25) + 1)


def _strip(payload: bytes) -> bytes:
    assert vp8_descriptor_size(payload) == 4
    return payload[4:]


def test_vp8_payloads_split_a_keyframe_so_that_the_chunks_rebuild_it(library):
    frame = library.video_layers[2].frames[0].data
    payloads = vp8_payloads(frame, picture_id=0x1234, max_size=1100)
    assert len(payloads) == -(-len(frame) // 1096) > 1
    assert all(len(payload) <= 1100 for payload in payloads)
    assert b"".join(_strip(payload) for payload in payloads) == frame
    assert [bool(payload[0] & 0x10) for payload in payloads] == [True] + [False] * (
        len(payloads) - 1
    )
    for payload in payloads:
        assert payload[0] & 0x8F == 0x80  # X=1, partition index 0
        assert payload[1] == 0x80  # I=1
        assert payload[2:4] == bytes((0x80 | 0x12, 0x34))  # M=1, 15-bit picture id
    assert vp8_is_keyframe(payloads[0])
    assert not any(vp8_is_keyframe(payload) for payload in payloads[1:])


def test_vp8_payloads_of_an_inter_frame_are_not_a_keyframe(library):
    frame = library.video_layers[0].frames[1].data
    payloads = vp8_payloads(frame, picture_id=7)
    assert b"".join(_strip(payload) for payload in payloads) == frame
    assert payloads[0][0] & 0x10 and payloads[0][4] & 0x01
    assert not vp8_is_keyframe(payloads[0])


@pytest.mark.parametrize("size", [1, 5, 96, 97, 1000])
def test_vp8_payloads_respect_any_maximum_size_and_wrap_the_picture_id(size):
    frame = bytes(range(256)) * 4 + b"\x01\x02\x03"
    payloads = vp8_payloads(frame[:size], picture_id=0x8000 + 5, max_size=100)
    assert all(len(payload) <= 100 for payload in payloads)
    assert b"".join(_strip(payload) for payload in payloads) == frame[:size]
    assert all(payload[2:4] == b"\x80\x05" for payload in payloads)  # 15 bits: 0x8005 -> 5
    sizes = [len(payload) for payload in payloads]
    assert max(sizes) - min(sizes) <= 1  # evenly split


def test_vp8_payloads_reject_an_empty_frame_or_no_room_for_data():
    with pytest.raises(ValueError):
        vp8_payloads(b"", picture_id=1)
    with pytest.raises(ValueError):
        vp8_payloads(b"\x00", picture_id=1, max_size=4)


def test_load_media_rejects_a_non_positive_duration(tmp_path):
    with pytest.raises(ValueError):
        load_media(tmp_path, seconds=0)
