"""Streaming encrypted file format for recordings at rest (AES-256-GCM).

A recording segment is written as it is recorded, so the format is a sequence of independently
authenticated records: a crash (`kill -9`) at any moment leaves every complete record readable,
while tampering, reordering and truncation are detected.

File layout (integers big-endian)::

    offset  size  field
    0       8     magic b"BALIEREC"
    8       2     format version (1)
    10      2     reserved, 0
    12      8     key id: the first 8 bytes of SHA-256(b"balie-recording-key-id\\0" + key)
    20      16    salt: random; the segment's own key is HKDF-SHA256(key, salt, INFO)
    36      4     nonce prefix: random
    40      4     segment index
    44      2     length L of the recording id
    46      L     recording id (UTF-8)
    46+L    ...   records: u32 length N, then N bytes of ciphertext + 16-byte GCM tag

Record i (counting from 0) is sealed with AES-GCM under the segment key, with

    nonce = nonce prefix (4 bytes) + i (u64)
    associated data = SHA-256(header bytes) + i (u64) + final flag (u8: 1 on the last record)

so the header (recording id and segment index included) is bound to every record, a record
cannot move to another position, and the writer's `close()` marks the end with a final record
(empty plaintext). A reader therefore knows:

- every record decrypts, the final record is last → the file was closed cleanly;
- the file ends after a complete non-final record, or in the middle of a record (a partial
  last record is dropped) → the file is truncated (a crash, or someone cut it); everything
  before is authentic;
- a record does not decrypt, or data follows the final record → `SegmentTamperedError`.

The length prefix itself is not authenticated: a changed length makes the record fail to
decrypt, except when it points past the end of the file, which reads as a truncation (the
records before it are still authentic, and the result says the file is truncated).

Per-segment keys (HKDF with a random salt) keep nonces unique even when one configured key
encrypts many recordings, so random 4-byte prefixes are enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_SIZE",
    "EncryptedReader",
    "EncryptedWriter",
    "PlaintextFile",
    "ReadResult",
    "SegmentFormatError",
    "SegmentHeader",
    "SegmentKeyError",
    "SegmentTamperedError",
    "generate_key_file",
    "key_id",
    "load_key",
    "open_encrypted",
    "read_header",
]

MAGIC = b"BALIEREC"
VERSION = 1
KEY_SIZE = 32
TAG_SIZE = 16
SALT_SIZE = 16
NONCE_PREFIX_SIZE = 4
MAX_RECORD_SIZE = 64 * 1024 * 1024  # a length above this is not a record but damage
HKDF_INFO = b"balie recording segment v1"
_FIXED = struct.Struct("!8sHH8s16s4sIH")
_LENGTH = struct.Struct("!I")
_AAD_TAIL = struct.Struct("!QB")


class SegmentFormatError(ValueError):
    """Not a recording segment, or a version this code does not read."""


class SegmentKeyError(ValueError):
    """The segment was encrypted with another key (its key id does not match)."""


class SegmentTamperedError(ValueError):
    """A record does not authenticate, or data follows the final record."""


def key_id(key: bytes) -> bytes:
    """8-byte identifier of a key, stored in each segment so the right key can be found."""
    return hashlib.sha256(b"balie-recording-key-id\0" + key).digest()[:8]


def load_key(source: str | os.PathLike[str] | bytes) -> bytes:
    """A 32-byte key from 64 hex digits, raw bytes, or a file holding hex, base64 or raw bytes."""
    if isinstance(source, bytes):
        if len(source) != KEY_SIZE:
            raise ValueError(f"a recording key has {KEY_SIZE} bytes, not {len(source)}")
        return source
    if isinstance(source, str) and re.fullmatch(r"[0-9a-fA-F]{64}", source.strip()):
        return bytes.fromhex(source.strip())
    blob = Path(source).read_bytes()
    if len(blob) == KEY_SIZE:
        return blob
    text = blob.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text.decode())
    try:
        decoded = base64.b64decode(text, altchars=b"-_" if b"-" in text or b"_" in text else None)
    except binascii.Error:
        decoded = b""
    if len(decoded) == KEY_SIZE:
        return decoded
    raise ValueError(f"{source}: expected a 32-byte key as 64 hex digits, base64 or raw bytes")


def generate_key_file(path: str | os.PathLike[str]) -> bytes:
    """Create a new random key file (64 hex digits, mode 0600); refuse to overwrite one."""
    key = secrets.token_bytes(KEY_SIZE)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return key


@dataclass(frozen=True)
class SegmentHeader:
    version: int
    key_id: bytes
    salt: bytes
    nonce_prefix: bytes
    segment_index: int
    recording_id: str
    raw: bytes  # the header bytes as stored

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.raw).digest()

    @staticmethod
    def build(key: bytes, recording_id: str, segment_index: int) -> SegmentHeader:
        encoded = recording_id.encode()
        if len(encoded) > 0xFFFF:
            raise ValueError("recording id too long")
        salt = secrets.token_bytes(SALT_SIZE)
        prefix = secrets.token_bytes(NONCE_PREFIX_SIZE)
        raw = (
            _FIXED.pack(MAGIC, VERSION, 0, key_id(key), salt, prefix, segment_index, len(encoded))
            + encoded
        )
        return SegmentHeader(VERSION, key_id(key), salt, prefix, segment_index, recording_id, raw)

    @staticmethod
    def parse(file: BinaryIO) -> SegmentHeader:
        fixed = _read_exactly(file, _FIXED.size)
        if len(fixed) < _FIXED.size:
            raise SegmentFormatError("file shorter than a segment header")
        magic, version, _reserved, kid, salt, prefix, index, id_length = _FIXED.unpack(fixed)
        if magic != MAGIC:
            raise SegmentFormatError("not a recording segment (bad magic)")
        if version != VERSION:
            raise SegmentFormatError(f"segment format version {version} is not supported")
        encoded = _read_exactly(file, id_length)
        if len(encoded) < id_length:
            raise SegmentFormatError("truncated segment header")
        try:
            recording_id = encoded.decode()
        except UnicodeDecodeError as error:
            raise SegmentFormatError("recording id is not UTF-8") from error
        return SegmentHeader(version, kid, salt, prefix, index, recording_id, fixed + encoded)


def _segment_cipher(key: bytes, header: SegmentHeader) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise ValueError(f"a recording key has {KEY_SIZE} bytes, not {len(key)}")
    derived = HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=header.salt, info=HKDF_INFO
    ).derive(key)
    return AESGCM(derived)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(8, "big")


def _read_exactly(file: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = file.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class EncryptedWriter(io.RawIOBase):
    """A write-only, non-seekable binary file that encrypts each `write` into one record.

    Each record goes to the operating system in one `write` call right away (the file is
    unbuffered), so a killed process leaves every complete record on disk; with `fsync=True`
    each record is also forced to stable storage (survives a power loss, costs a disk flush).
    `close()` appends the final record that marks a cleanly closed file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: bytes,
        *,
        recording_id: str = "",
        segment_index: int = 0,
        fsync: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.header = SegmentHeader.build(key, recording_id, segment_index)
        self._cipher = _segment_cipher(key, self.header)
        self._digest = self.header.digest
        self._fsync = fsync
        self._file = open(self.path, "xb", buffering=0)  # closed in close()
        self.records = 0
        self.plaintext_bytes = 0
        self.bytes_written = 0
        self._write_all(self.header.raw)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if written is None:  # pragma: no cover - only for non-blocking files
                continue
            view = view[written:]
        self.bytes_written += len(data)
        if self._fsync:
            os.fsync(self._file.fileno())

    def _seal(self, plaintext: bytes, final: bool) -> None:
        aad = self._digest + _AAD_TAIL.pack(self.records, 1 if final else 0)
        sealed = self._cipher.encrypt(
            _nonce(self.header.nonce_prefix, self.records), plaintext, aad
        )
        self._write_all(_LENGTH.pack(len(sealed)) + sealed)
        self.records += 1
        self.plaintext_bytes += len(plaintext)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed EncryptedWriter")
        size = len(data)
        if size:
            if size > MAX_RECORD_SIZE - TAG_SIZE:
                raise ValueError("a single write is larger than the maximum record")
            self._seal(bytes(data), final=False)
        return size

    def flush(self) -> None:
        """Records are written as they come; nothing is held back."""

    def close(self) -> None:
        """Write the final record and close the file (idempotent)."""
        if self.closed:
            return
        try:
            self._seal(b"", final=True)
            if not self._fsync:
                os.fsync(self._file.fileno())
        finally:
            self._file.close()
            super().close()

    def abandon(self) -> None:
        """Close the file without the final record (as a crash would leave it)."""
        if not self.closed:
            self._file.close()
            super().close()


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
        self._cipher = _segment_cipher(key, self.header)
        self.result: ReadResult | None = None

    def __iter__(self) -> Iterator[bytes]:
        result = ReadResult()
        digest = self.header.digest
        prefix = self.header.nonce_prefix
        with open(self.path, "rb") as file:
            file.seek(len(self.header.raw))
            index = 0
            while True:
                length_bytes = _read_exactly(file, _LENGTH.size)
                if not length_bytes:
                    break  # EOF at a record boundary
                if len(length_bytes) < _LENGTH.size:
                    result.dropped_bytes = len(length_bytes)
                    break
                (length,) = _LENGTH.unpack(length_bytes)
                if length < TAG_SIZE or length > MAX_RECORD_SIZE:
                    raise SegmentTamperedError(f"record {index} has an impossible length {length}")
                sealed = _read_exactly(file, length)
                if len(sealed) < length:
                    result.dropped_bytes = _LENGTH.size + len(sealed)
                    break
                nonce = _nonce(prefix, index)
                try:
                    plaintext = self._cipher.decrypt(
                        nonce, sealed, digest + _AAD_TAIL.pack(index, 0)
                    )
                except InvalidTag:
                    try:
                        plaintext = self._cipher.decrypt(
                            nonce, sealed, digest + _AAD_TAIL.pack(index, 1)
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


def read_header(path: str | os.PathLike[str]) -> SegmentHeader:
    """The header of a segment (needs no key)."""
    with open(path, "rb") as file:
        return SegmentHeader.parse(file)
