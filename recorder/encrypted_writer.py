"""Writing an encrypted recording segment as it is recorded (format: recorder/segment_crypto.py)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from recorder.segment_crypto import (
    AAD_TAIL,
    MAX_RECORD_SIZE,
    RECORD_LENGTH,
    TAG_SIZE,
    SegmentHeader,
    record_nonce,
    segment_cipher,
)

__all__ = ["EncryptedWriter"]


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
        self._cipher = segment_cipher(key, self.header)
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
        aad = self._digest + AAD_TAIL.pack(self.records, 1 if final else 0)
        sealed = self._cipher.encrypt(
            record_nonce(self.header.nonce_prefix, self.records), plaintext, aad
        )
        self._write_all(RECORD_LENGTH.pack(len(sealed)) + sealed)
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
