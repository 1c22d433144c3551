"""A real Balie server (control plane + SFU) on 127.0.0.1 for tests, in the test's event loop."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from common.ports import free_port
from control.app import create_app
from control.config import Settings
from control.tokens import issue_join_token
from control.workers import RemoteSfu
from sfu.config import LOOPBACK_NETWORKS, SfuConfig
from sfu.service import Sfu


@dataclass
class RunningServer:
    base_url: str
    settings: Settings
    sfu: Any  # Sfu, or RemoteSfu with worker processes
    app: web.Application | None = None

    def token(
        self, room: str, identity: str, name: str | None = None, role: str = "resident"
    ) -> str:
        return issue_join_token(
            self.settings.token_secret, room, identity, name or identity, role, 600
        )

    def join_url(
        self,
        room: str,
        identity: str,
        name: str | None = None,
        role: str = "resident",
        host: str | None = None,
    ) -> str:
        base = self.base_url if host is None else self.base_url.replace("127.0.0.1", host)
        return f"{base}/call#token={self.token(room, identity, name, role)}"


@asynccontextmanager
async def running_server(
    data_dir: Path,
    *,
    extra_host: str | None = None,
    extra_network: str | None = None,
    workers: int = 1,
    recording: bool = False,
    **sfu_options: int,
) -> AsyncIterator[RunningServer]:
    """The server on 127.0.0.1 and, for a test host in its own namespace, on `extra_host` too.

    With `recording` the recorder process runs too (`app` gives access to its parts).
    """
    port = free_port()
    rtc_ips = ("127.0.0.1",) if extra_host is None else ("127.0.0.1", extra_host)
    networks = LOOPBACK_NETWORKS
    if extra_network is not None:
        networks = (*LOOPBACK_NETWORKS, ipaddress.ip_network(extra_network))
    settings = Settings.load(
        host="127.0.0.1",
        port=port,
        data_dir=data_dir,
        rtc_ips=rtc_ips,
        allowed_networks=networks,
        env={},
    )
    sfu: Any
    if workers > 1:
        sfu = RemoteSfu(workers, rtc_ips, networks, 32)
        await sfu.start()
    else:
        sfu = Sfu(SfuConfig(rtc_ips=rtc_ips, allowed_networks=networks, **sfu_options))
    app = create_app(settings, sfu, recording=recording)
    runner = web.AppRunner(app)
    await runner.setup()
    for host in rtc_ips:
        await web.TCPSite(runner, host, port).start()
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings, sfu, app)
    finally:
        await runner.cleanup()
