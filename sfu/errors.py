"""Errors the SFU reports to the signalling layer."""

from __future__ import annotations


class SignallingError(Exception):
    """Bad signalling input. `code` is one of the codes in docs/signalling.md."""

    def __init__(self, code: str, message: str, *, fatal: bool = True, close_code: int = 4400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal
        self.close_code = close_code

    def to_message(self) -> dict[str, object]:
        return {"type": "error", "code": self.code, "message": self.message, "fatal": self.fatal}
