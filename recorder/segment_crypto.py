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

This module holds the format itself: header, keys, nonces and errors. Writing a segment is
`recorder.encrypted_writer.EncryptedWriter`, reading one `recorder.encrypted_reader`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_SIZE",
    "SegmentFormatError",
    "SegmentHeader",
    "SegmentKeyError",
    "SegmentTamperedError",
    "generate_key_file",
    "key_id",
    "load_key",
    "read_exactly",
    "read_header",
    "record_nonce",
    "segment_cipher",
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
RECORD_LENGTH = struct.Struct("!I")  # in front of every record
AAD_TAIL = struct.Struct("!QB")  # record index, final flag: after the header's digest


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
        fixed = read_exactly(file, _FIXED.size)
        if len(fixed) < _FIXED.size:
            raise SegmentFormatError("file shorter than a segment header")
        magic, version, _reserved, kid, salt, prefix, index, id_length = _FIXED.unpack(fixed)
        if magic != MAGIC:
            raise SegmentFormatError("not a recording segment (bad magic)")
        if version != VERSION:
            raise SegmentFormatError(f"segment format version {version} is not supported")
        encoded = read_exactly(file, id_length)
        if len(encoded) < id_length:
            raise SegmentFormatError("truncated segment header")
        try:
            recording_id = encoded.decode()
        except UnicodeDecodeError as error:
            raise SegmentFormatError("recording id is not UTF-8") from error
        return SegmentHeader(version, kid, salt, prefix, index, recording_id, fixed + encoded)


def segment_cipher(key: bytes, header: SegmentHeader) -> AESGCM:
    """AES-GCM under the segment's own key, HKDF-SHA256(key, the header's salt, HKDF_INFO)."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"a recording key has {KEY_SIZE} bytes, not {len(key)}")
    derived = HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=header.salt, info=HKDF_INFO
    ).derive(key)
    return AESGCM(derived)


def record_nonce(prefix: bytes, index: int) -> bytes:
    """The nonce of record `index`: the segment's 4-byte prefix and the index as a u64."""
    return prefix + index.to_bytes(8, "big")


def read_exactly(file: BinaryIO, size: int) -> bytes:
    """`size` bytes, or fewer only at the end of the file."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = file.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def read_header(path: str | os.PathLike[str]) -> SegmentHeader:
    """The header of a segment (needs no key)."""
    with open(path, "rb") as file:
        return SegmentHeader.parse(file)
