"""Servers the benchmark starts as subprocesses: waiting until they answer, stopping them."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable

POLL_INTERVAL_S = 0.2


def wait_until_answering(
    process: subprocess.Popen[bytes],
    url: str,
    timeout_s: float,
    what: str,
    *,
    expect: bytes | None = None,
    detail: Callable[[], str] | None = None,
) -> None:
    """Return once GET `url` answers (containing `expect`, when given); else stop it and raise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            extra = f":\n{detail()}" if detail is not None else ""
            raise RuntimeError(f"{what} exited with {process.returncode}{extra}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if expect is None or expect in response.read():
                    return
        except OSError:
            pass
        time.sleep(POLL_INTERVAL_S)
    stop_process(process)
    extra = f":\n{detail()}" if detail is not None else ""
    raise RuntimeError(f"{what} did not answer {url} within {timeout_s:g} s{extra}")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, and SIGKILL when it has not ended within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
