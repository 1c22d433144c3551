"""The encrypted segment format: records survive a crash, tampering and truncation are seen."""

from __future__ import annotations

import base64
import os
import stat
import struct
from pathlib import Path

import pytest

from recorder.encrypted_reader import open_encrypted
from recorder.encrypted_writer import EncryptedWriter
from recorder.segment_crypto import (
    SegmentFormatError,
    SegmentKeyError,
    SegmentTamperedError,
    generate_key_file,
    key_id,
    load_key,
    read_header,
)

KEY = bytes(range(32))
CHUNKS = [b"header", b"a" * 1000, b"", b"b" * 5, bytes(range(256)) * 10]


def write_segment(path: Path, chunks=CHUNKS, *, close: bool = True, **kwargs) -> EncryptedWriter:
    writer = EncryptedWriter(path, KEY, recording_id="rec-1", segment_index=3, **kwargs)
    for chunk in chunks:
        assert writer.write(chunk) == len(chunk)
    if close:
        writer.close()
    else:
        writer.abandon()
    return writer


def record_offsets(path: Path) -> list[int]:
    """Where each record starts (after the header), and the end of the file."""
    blob = path.read_bytes()
    offset = len(read_header(path).raw)
    offsets = []
    while offset < len(blob):
        offsets.append(offset)
        (length,) = struct.unpack_from("!I", blob, offset)
        offset += 4 + length
    return [*offsets, len(blob)]


def test_what_is_written_reads_back_and_the_file_was_closed_cleanly(tmp_path):
    path = tmp_path / "s.enc"
    writer = write_segment(path)
    assert writer.records == 5  # four non-empty writes and the final record
    reader = open_encrypted(path, KEY, expected_recording_id="rec-1", expected_segment_index=3)
    assert list(reader) == [c for c in CHUNKS if c]
    assert reader.result is not None
    assert reader.result.closed_cleanly and not reader.result.truncated
    assert reader.header.recording_id == "rec-1"
    assert reader.header.segment_index == 3
    assert reader.header.key_id == key_id(KEY)


def test_the_writer_is_a_write_only_file_that_cannot_seek(tmp_path):
    writer = EncryptedWriter(tmp_path / "s.enc", KEY)
    assert writer.writable() and not writer.seekable() and not writer.readable()
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError):
        writer.write(b"late")


def test_a_file_that_is_not_closed_reads_as_truncated_with_every_record(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path, close=False)
    reader = open_encrypted(path, KEY)
    assert list(reader) == [c for c in CHUNKS if c]
    assert reader.result is not None and reader.result.truncated


def test_a_file_cut_at_any_byte_keeps_every_complete_record(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path, close=False)
    blob = path.read_bytes()
    header_size = len(read_header(path).raw)
    offsets = record_offsets(path)
    cut = tmp_path / "cut.enc"
    sizes = set(range(header_size, len(blob) + 1, 11))
    sizes |= {o + d for o in offsets for d in (-1, 0, 1, 4, 5) if header_size <= o + d <= len(blob)}
    for size in sorted(sizes):
        cut.write_bytes(blob[:size])
        reader = open_encrypted(cut, KEY)
        chunks = list(reader)
        complete = sum(1 for end in offsets[1:] if end <= size)
        assert chunks == [c for c in CHUNKS if c][:complete], size
        assert reader.result is not None and reader.result.truncated
        assert reader.result.dropped_bytes == size - max(o for o in offsets if o <= size)


def test_a_cut_inside_the_header_is_not_a_segment(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(SegmentFormatError):
        open_encrypted(path, KEY)


def test_a_flipped_byte_in_a_record_is_tampering(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    offsets = record_offsets(path)
    blob = bytearray(path.read_bytes())
    blob[offsets[1] + 4 + 100] ^= 0x01  # inside the second record's ciphertext
    path.write_bytes(bytes(blob))
    reader = open_encrypted(path, KEY)
    with pytest.raises(SegmentTamperedError):
        list(reader)


def test_a_changed_header_is_tampering(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    blob = bytearray(path.read_bytes())
    blob[42] ^= 0x01  # the segment index
    path.write_bytes(bytes(blob))
    with pytest.raises(SegmentTamperedError):
        list(open_encrypted(path, KEY))


def test_swapped_records_are_tampering(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path, [b"first", b"other"])
    offsets = record_offsets(path)
    blob = path.read_bytes()
    first, second = blob[offsets[0] : offsets[1]], blob[offsets[1] : offsets[2]]
    path.write_bytes(blob[: offsets[0]] + second + first + blob[offsets[2] :])
    with pytest.raises(SegmentTamperedError):
        list(open_encrypted(path, KEY))


def test_data_after_the_final_record_is_tampering(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    with open(path, "ab") as file:
        file.write(b"\x00\x00\x00\x20" + bytes(32))
    with pytest.raises(SegmentTamperedError):
        list(open_encrypted(path, KEY))


def test_dropping_the_final_record_reads_as_truncated(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    offsets = record_offsets(path)
    path.write_bytes(path.read_bytes()[: offsets[-2]])
    reader = open_encrypted(path, KEY)
    list(reader)
    assert reader.result is not None and reader.result.truncated


def test_a_segment_of_another_recording_or_position_is_refused(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    with pytest.raises(SegmentTamperedError):
        open_encrypted(path, KEY, expected_recording_id="rec-2")
    with pytest.raises(SegmentTamperedError):
        open_encrypted(path, KEY, expected_segment_index=4)


def test_another_key_is_recognised_by_its_key_id(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    with pytest.raises(SegmentKeyError):
        open_encrypted(path, bytes(32))


def test_two_segments_with_the_same_content_look_different(tmp_path):
    write_segment(tmp_path / "a.enc")
    write_segment(tmp_path / "b.enc")
    assert (tmp_path / "a.enc").read_bytes() != (tmp_path / "b.enc").read_bytes()


def test_the_writer_refuses_to_overwrite_a_file(tmp_path):
    path = tmp_path / "s.enc"
    write_segment(path)
    with pytest.raises(FileExistsError):
        EncryptedWriter(path, KEY)


def test_keys_load_from_hex_raw_and_base64_and_a_new_key_file_is_private(tmp_path):
    assert load_key(KEY.hex()) == KEY
    assert load_key(KEY) == KEY
    for name, content in [
        ("hex", KEY.hex().encode() + b"\n"),
        ("raw", KEY),
        ("b64", base64.b64encode(KEY)),
        ("url", base64.urlsafe_b64encode(KEY)),
    ]:
        (tmp_path / name).write_bytes(content)
        assert load_key(tmp_path / name) == KEY, name
    (tmp_path / "short").write_text("abcd")
    with pytest.raises(ValueError):
        load_key(tmp_path / "short")
    with pytest.raises(ValueError):
        load_key(b"too short")
    new = generate_key_file(tmp_path / "key")
    assert load_key(str(tmp_path / "key")) == new
    assert stat.S_IMODE(os.stat(tmp_path / "key").st_mode) == 0o600
    with pytest.raises(FileExistsError):
        generate_key_file(tmp_path / "key")
