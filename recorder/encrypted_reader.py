"""Reading an encrypted recording segment, authenticating every record as it is read.

The format and what a reader learns from it (closed cleanly, truncated, tampered) are described
in recorder/segment_crypto.py.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag

from recorder.segment_crypto import (
    AAD_TAIL,
    MAX_RECORD_SIZE,
    RECORD_LENGTH,
    TAG_SIZE,
    SegmentHeader,
    SegmentKeyError,
    SegmentTamperedError,
    key_id,
    read_exactly,
    record_nonce,
    segment_cipher,
)

__all__ = ["EncryptedReader", "PlaintextFile", "ReadResult", "open_encrypted"]


@dataclass
class ReadResult:
    """How a segment ended, known once its records have all been read."""

    records: int = 0
    plaintext_bytes: int = 0
    closed_cleanly: bool = False
    dropped_bytes: int = 0  # of a partial last record

    @property
    def truncated(self) -> bool:
        return not self.closed_cleanly


class EncryptedReader:
    """The plaintext records of one segment, authenticated as they are read.

    Iterate for the plaintext chunks (tampering raises `SegmentTamperedError` when the bad
    record is reached); `result` is filled in when the iteration ends. `as_file()` gives a
    non-seekable readable file over the same plaintext, for a demuxer.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: bytes,
        *,
        expected_recording_id: str | None = None,
        expected_segment_index: int | None = None,
    ) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as file:
            self.header = SegmentHeader.parse(file)
        if self.header.key_id != key_id(key):
            raise SegmentKeyError(
                f"{self.path.name} was encrypted with key id "
                f"{self.header.key_id.hex()}, not {key_id(key).hex()}"
            )
        if expected_recording_id is not None and self.header.recording_id != expected_recording_id:
            raise SegmentTamperedError(
                f"{self.path.name} belongs to recording {self.header.recording_id!r}"
            )
        if expected_segment_index is not None and (
            self.header.segment_index != expected_segment_index
        ):
            raise SegmentTamperedError(
                f"{self.path.name} is segment {self.header.segment_index}, "
                f"not {expected_segment_index}"
            )
        self._cipher = segment_cipher(key, self.header)
        self.result: ReadResult | None = None

    def __iter__(self) -> Iterator[bytes]:
        result = ReadResult()
        digest = self.header.digest
        prefix = self.header.nonce_prefix
        with open(self.path, "rb") as file:
            file.seek(len(self.header.raw))
            index = 0
            while True:
                length_bytes = read_exactly(file, RECORD_LENGTH.size)
                if not length_bytes:
                    break  # EOF at a record boundary
                if len(length_bytes) < RECORD_LENGTH.size:
                    result.dropped_bytes = len(length_bytes)
                    break
                (length,) = RECORD_LENGTH.unpack(length_bytes)
                if length < TAG_SIZE or length > MAX_RECORD_SIZE:
                    raise SegmentTamperedError(f"record {index} has an impossible length {length}")
                sealed = read_exactly(file, length)
                if len(sealed) < length:
                    result.dropped_bytes = RECORD_LENGTH.size + len(sealed)
                    break
                nonce = record_nonce(prefix, index)
                try:
                    plaintext = self._cipher.decrypt(
                        nonce, sealed, digest + AAD_TAIL.pack(index, 0)
                    )
                except InvalidTag:
                    try:
                        plaintext = self._cipher.decrypt(
                            nonce, sealed, digest + AAD_TAIL.pack(index, 1)
                        )
                    except InvalidTag:
                        raise SegmentTamperedError(
                            f"{self.path.name}: record {index} does not authenticate"
                        ) from None
                    if file.read(1):
                        raise SegmentTamperedError(
                            f"{self.path.name}: data after the final record"
                        ) from None
                    result.closed_cleanly = True
                index += 1
                result.records = index
                if plaintext:
                    result.plaintext_bytes += len(plaintext)
                    yield plaintext
                if result.closed_cleanly:
                    break
        self.result = result

    def read_all(self) -> bytes:
        return b"".join(self)

    def as_file(self) -> PlaintextFile:
        return PlaintextFile(iter(self))


class PlaintextFile(io.RawIOBase):
    """A readable, non-seekable file over an iterator of plaintext chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._offset >= len(self._pending):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
            self._offset = 0
        size = min(len(buffer), len(self._pending) - self._offset)
        buffer[:size] = self._pending[self._offset : self._offset + size]
        self._offset += size
        return size

    def drain(self) -> None:
        """Read (and authenticate) whatever has not been read yet."""
        self._pending = b""
        self._offset = 0
        for _ in self._chunks:
            pass


def open_encrypted(
    path: str | os.PathLike[str],
    key: bytes,
    *,
    expected_recording_id: str | None = None,
    expected_segment_index: int | None = None,
) -> EncryptedReader:
    """Open a segment for reading: iterate it for plaintext chunks, then look at `.result`."""
    return EncryptedReader(
        path,
        key,
        expected_recording_id=expected_recording_id,
        expected_segment_index=expected_segment_index,
    )
