"""Extra test hosts behind a rate-limited link, in their own network namespace.

`limited_host()` must run as root inside the loopback-only namespace that `make test` provides
(`unshare -n`). It creates a named network namespace joined to the current one by a veth pair
on a private /30 (10.201.X.0/30: current namespace .1, new host .2), optionally shapes the
traffic *towards* the new host (egress of the host-side veth: tbf, and netem for extra delay),
and yields a `LimitedHost` with a Chromium wrapper script that starts Chromium inside the new
namespace, so a browser there gets a slow downlink.

Nothing here touches any interface outside these namespaces: the helper refuses to run unless
the current namespace holds only `lo` (and veths this helper created), and neither namespace
has a default route.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser import CHROMIUM

NETWORK_PREFIX = "10.201"
COMMAND_TIMEOUT = 15.0
TBF_BURST = "16kbit"
TBF_LATENCY_MS = 100
_VETH_PREFIX = "blh"


class NetnsCommandError(RuntimeError):
    """An `ip` or `tc` command failed (or timed out); the message carries its stderr."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited with {returncode}"
        detail = stderr.strip() or "(no stderr)"
        super().__init__(f"`{shlex.join(self.argv)}` {status}: {detail}")


@dataclass(frozen=True)
class LimitedHost:
    netns: str
    host_address: str
    inside_address: str
    network: str
    chromium_wrapper: Path
    host_interface: str = ""
    rate_kbit: int | None = None
    delay_ms: int = 0

    def command(self, *argv: str) -> list[str]:
        """argv that runs `argv` inside the host's namespace."""
        return [_tool("ip"), "netns", "exec", self.netns, *argv]


@dataclass
class _Resources:
    """What one `limited_host()` call created, for idempotent cleanup."""

    index: int
    netns: str
    veth: str
    temp_dir: Path
    done: bool = field(default=False)


_ACTIVE: dict[int, _Resources] = {}
_SEQUENCE = itertools.count(1)
_NEXT_INDEX = itertools.count(1)


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        pytest.skip(f"`{name}` not found: install iproute2 (provides ip and tc)")
    return path


async def _run(*argv: str) -> str:
    """Run an ip/tc command; return stdout, raise NetnsCommandError with stderr on failure."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
    except BaseException as error:  # timeout or cancellation: do not leave it running
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        if isinstance(error, TimeoutError):
            raise NetnsCommandError(argv, None, f"no result after {COMMAND_TIMEOUT} s") from None
        raise
    if proc.returncode != 0:
        raise NetnsCommandError(argv, proc.returncode, stderr.decode(errors="replace"))
    return stdout.decode(errors="replace")


def _same_netns_as_init() -> bool:
    """True if we share pid 1's network namespace (the machine's real network)."""
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return False


def _interface_names(link_output: str) -> list[str]:
    names = []
    for line in link_output.splitlines():
        match = re.match(r"\d+:\s+([^:@\s]+)", line)
        if match:
            names.append(match.group(1))
    return names


async def _check_environment() -> set[int]:
    """Refuse (skip) unless root in a loopback-only namespace; return the 10.201.X in use."""
    if os.geteuid() != 0:
        pytest.skip("limited_host() needs root (run the suite via `unshare -n` as root)")
    ip = _tool("ip")
    _tool("tc")
    if _same_netns_as_init():
        pytest.skip("limited_host() refuses to run in the machine's initial network namespace")
    names = _interface_names(await _run(ip, "-o", "link", "show"))
    own = {res.veth for res in _ACTIVE.values()}
    foreign = sorted(set(names) - own - {"lo"})
    if foreign or "lo" not in names:
        pytest.skip(
            "limited_host() runs only in a loopback-only network namespace "
            f"(found interfaces {names}); run the suite via `unshare -n`"
        )
    used = set()
    for match in re.finditer(
        rf"inet {re.escape(NETWORK_PREFIX)}\.(\d+)\.", await _run(ip, "-o", "-4", "addr")
    ):
        used.add(int(match.group(1)))
    return used


def _pick_index(used: set[int]) -> int:
    for _ in range(254):
        index = (next(_NEXT_INDEX) - 1) % 254 + 1
        if index not in _ACTIVE and index not in used:
            return index
    raise RuntimeError(f"no free {NETWORK_PREFIX}.X.0/30 network left")


def _write_wrapper(temp_dir: Path, netns: str) -> Path:
    wrapper = temp_dir / "chromium"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {shlex.quote(_tool('ip'))} netns exec {shlex.quote(netns)} "
        f'{shlex.quote(CHROMIUM)} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def _make_temp_dir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"balie-netns-{name}-"))


def _remove_temp_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _netns_exists(netns: str) -> bool:
    return os.path.exists(f"/run/netns/{netns}")


async def _shape(veth: str, rate_kbit: int | None, delay_ms: int) -> None:
    tc = _tool("tc")
    root = [tc, "qdisc", "add", "dev", veth, "root"]
    tbf = ["tbf", "rate", f"{rate_kbit}kbit", "burst", TBF_BURST, "latency"]
    try:
        if delay_ms > 0:
            await _run(*root, "handle", "1:", "netem", "delay", f"{delay_ms}ms", "limit", "10000")
            if rate_kbit is not None:
                # Packets leave netem after the delay and queue in tbf; allow that queue to
                # hold the bandwidth-delay product on top of the usual 100 ms.
                child = [tc, "qdisc", "add", "dev", veth, "parent", "1:1", "handle", "10:"]
                await _run(*child, *tbf, f"{TBF_LATENCY_MS + delay_ms}ms")
        elif rate_kbit is not None:
            await _run(*root, *tbf, f"{TBF_LATENCY_MS}ms")
    except NetnsCommandError as error:
        if "netem" in error.argv and "unknown" in error.stderr.lower():
            pytest.skip("this kernel has no sch_netem, so limited_host(delay_ms>0) is unavailable")
        raise


async def _cleanup(res: _Resources) -> None:
    """Delete veth, namespace and temp dir; idempotent, tolerant of half-created state."""
    ip = _tool("ip")
    with contextlib.suppress(NetnsCommandError):
        await _run(ip, "link", "del", res.veth)  # also removes the peer and the qdiscs
    if _netns_exists(res.netns):
        with contextlib.suppress(NetnsCommandError):
            await _run(ip, "netns", "del", res.netns)
    _remove_temp_dir(res.temp_dir)
    if _netns_exists(res.netns):
        raise RuntimeError(f"network namespace {res.netns} is still there after cleanup")
    res.done = True
    _ACTIVE.pop(res.index, None)


def _cleanup_blocking(res: _Resources) -> None:
    """Synchronous cleanup for cancellation-during-cleanup and interpreter exit."""
    if res.done:
        return
    ip = shutil.which("ip") or "/usr/sbin/ip"
    for argv in ([ip, "link", "del", res.veth], [ip, "netns", "del", res.netns]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
    _remove_temp_dir(res.temp_dir)
    res.done = not _netns_exists(res.netns)
    if res.done:
        _ACTIVE.pop(res.index, None)


@atexit.register
def _cleanup_leftovers() -> None:
    for res in list(_ACTIVE.values()):
        _cleanup_blocking(res)


async def _release(res: _Resources) -> None:
    task = asyncio.ensure_future(_cleanup(res))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        _cleanup_blocking(res)
        raise


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:24]
    return slug or "host"


@asynccontextmanager
async def limited_host(
    name: str, *, rate_kbit: int | None, delay_ms: int = 0
) -> AsyncIterator[LimitedHost]:
    """A fresh network namespace reachable over a veth, with a shaped downlink towards it.

    `rate_kbit` limits traffic from the current namespace to the new host (tbf on the
    host-side veth's egress); `delay_ms` adds one-way delay in that direction (netem; skips
    when the kernel lacks sch_netem). Everything is removed on exit, also on errors and
    cancellation.
    """
    if rate_kbit is not None and rate_kbit <= 0:
        raise ValueError("rate_kbit must be positive (or None for no limit)")
    if delay_ms < 0:
        raise ValueError("delay_ms must not be negative")
    used = await _check_environment()
    index = _pick_index(used)
    slug = _slug(name)
    netns = f"balie-{slug}-{os.getpid()}-{next(_SEQUENCE)}-{secrets.token_hex(2)}"
    res = _Resources(
        index=index, netns=netns, veth=f"{_VETH_PREFIX}{index}", temp_dir=_make_temp_dir(slug)
    )
    _ACTIVE[index] = res
    base = f"{NETWORK_PREFIX}.{index}"
    host_address, inside_address = f"{base}.1", f"{base}.2"
    ip = _tool("ip")
    try:
        await _run(ip, "netns", "add", netns)
        await _run(
            ip, "link", "add", res.veth, "type", "veth", "peer", "name", "eth0", "netns", netns
        )
        await _run(ip, "addr", "add", f"{host_address}/30", "dev", res.veth)
        await _run(ip, "-n", netns, "addr", "add", f"{inside_address}/30", "dev", "eth0")
        await _run(ip, "-n", netns, "link", "set", "lo", "up")
        await _run(ip, "-n", netns, "link", "set", "eth0", "up")
        await _run(ip, "link", "set", res.veth, "up")
        await _shape(res.veth, rate_kbit, delay_ms)
        wrapper = _write_wrapper(res.temp_dir, netns)
        yield LimitedHost(
            netns=netns,
            host_address=host_address,
            inside_address=inside_address,
            network=f"{base}.0/30",
            chromium_wrapper=wrapper,
            host_interface=res.veth,
            rate_kbit=rate_kbit,
            delay_ms=delay_ms,
        )
    finally:
        await _release(res)
