"""Self-test of tests.netns.limited_host (runs only in the loopback-only namespace, as root)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from tests.browser import chromium
from tests.netns import LimitedHost, limited_host

pytestmark = pytest.mark.media

PAYLOAD = 200_000
CLIENT = """
import json, sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
start = time.monotonic()
size = 0
with opener.open(sys.argv[1], timeout=60) as response:
    while chunk := response.read(65536):
        size += len(chunk)
print(json.dumps({"bytes": size, "seconds": time.monotonic() - start}))
"""
CONNECT = """
import json, socket, sys, time
start = time.monotonic()
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30).close()
print(json.dumps({"seconds": time.monotonic() - start}))
"""


@asynccontextmanager
async def serve(address: str) -> AsyncIterator[str]:
    """aiohttp on `address` (the host side of the veth); yields its base URL."""

    async def blob(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * PAYLOAD, content_type="application/octet-stream")

    async def page(request: web.Request) -> web.Response:
        html = f"<!doctype html><title>netns</title><p id=peer>{request.remote}</p>"
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/blob", blob)
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, address, 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://{address}:{port}"
    finally:
        await runner.cleanup()


async def run_inside(host: LimitedHost, script: str, *args: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        *host.command(sys.executable, "-I", "-c", script, *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")
    return json.loads(out)


async def assert_gone(host: LimitedHost) -> None:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "list", stdout=asyncio.subprocess.PIPE
    )
    netns_list, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert host.netns not in netns_list.decode()
    proc = await asyncio.create_subprocess_exec(
        "ip", "-o", "link", "show", stdout=asyncio.subprocess.PIPE
    )
    links, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert host.host_interface not in links.decode()
    assert not host.chromium_wrapper.parent.exists()


async def test_rate_limit_slows_the_downlink() -> None:
    async with limited_host("slow", rate_kbit=300) as host, serve(host.host_address) as url:
        assert host.network == host.host_address.rsplit(".", 1)[0] + ".0/30"
        result = await run_inside(host, CLIENT, f"{url}/blob")
    assert result["bytes"] == PAYLOAD
    kbit_per_s = result["bytes"] * 8 / 1000 / result["seconds"]
    assert 100 < kbit_per_s < 600, f"{kbit_per_s:.0f} kbit/s with a 300 kbit/s limit"
    await assert_gone(host)


async def test_unlimited_is_fast_and_cleanup_survives_errors() -> None:
    with pytest.raises(LookupError):
        async with limited_host("fast", rate_kbit=None) as host, serve(host.host_address) as url:
            result = await run_inside(host, CLIENT, f"{url}/blob")
            assert result["bytes"] == PAYLOAD
            kbit_per_s = result["bytes"] * 8 / 1000 / result["seconds"]
            assert kbit_per_s > 3000, f"only {kbit_per_s:.0f} kbit/s without a limit"
            raise LookupError("boom")
    await assert_gone(host)


async def test_cleanup_on_cancellation() -> None:
    entered: asyncio.Future[LimitedHost] = asyncio.get_running_loop().create_future()

    async def hold() -> None:
        async with limited_host("cancel", rate_kbit=500) as host:
            entered.set_result(host)
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold())
    host = await asyncio.wait_for(entered, 30)
    assert host.chromium_wrapper.exists()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_gone(host)


async def test_delay_adds_latency() -> None:
    async with limited_host("delay", rate_kbit=1000, delay_ms=150) as host:
        async with serve(host.host_address) as url:
            port = url.rsplit(":", 1)[1]
            result = await run_inside(host, CONNECT, host.host_address, port)
    assert result["seconds"] >= 0.14  # the SYN-ACK crosses the delayed direction
    await assert_gone(host)


async def test_chromium_wrapper_runs_inside_the_namespace() -> None:
    async with (
        limited_host("chromium", rate_kbit=300) as host,
        serve(host.host_address) as url,
        chromium(executable_path=str(host.chromium_wrapper)) as browser,
    ):
        page = await browser.new_page()
        await page.goto(f"{url}/", timeout=60_000)
        # The server sees the browser's address on the far side of the veth.
        assert await page.text_content("#peer") == host.inside_address
    await assert_gone(host)
