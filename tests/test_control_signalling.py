"""The /rtc WebSocket: joining, relaying to the SFU session, errors and close codes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web

from control.app import create_app
from control.signalling import SignallingOptions
from control.tokens import AUDIENCE, issue_join_token
from tests.control_fakes import (
    TOKEN_SECRET,
    FakeSession,
    FakeSfu,
    Harness,
    make_settings,
    running_app,
)

TIMEOUT = 2.0


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    options = SignallingOptions(join_timeout=0.3, heartbeat=None)
    async with running_app(tmp_path, signalling=options) as h:
        yield h


def _token(
    room: str = "balie-1", identity: str = "inwoner-1", name: str = "Els", role: str = "resident"
) -> str:
    return issue_join_token(TOKEN_SECRET, room, identity, name, role, 600)


async def _receive(ws: ClientWebSocketResponse) -> dict[str, Any]:
    message: dict[str, Any] = await ws.receive_json(timeout=TIMEOUT)
    return message


async def _expect_close(ws: ClientWebSocketResponse, close_code: int) -> None:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type is WSMsgType.CLOSE, msg
    assert msg.data == close_code
    assert ws.close_code == close_code


async def _expect_fatal(ws: ClientWebSocketResponse, code: str, close_code: int) -> None:
    error = await _receive(ws)
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["fatal"] is True
    assert isinstance(error["message"], str) and error["message"]
    await _expect_close(ws, close_code)


async def _join(
    h: Harness, token: str | None = None
) -> tuple[ClientWebSocketResponse, FakeSession]:
    ws = await h.client.ws_connect("/rtc")
    await ws.send_json({"type": "join", "token": token or _token()})
    joined = await _receive(ws)
    assert joined["type"] == "joined"
    return ws, h.sfu.sessions[-1]


async def _wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), TIMEOUT)


async def test_valid_join_reaches_the_sfu_and_later_messages_go_to_the_session(
    harness: Harness,
) -> None:
    ws, session = await _join(harness, _token(name="Els Bakker", role="resident"))
    assert (session.room, session.identity, session.name, session.role) == (
        "balie-1",
        "inwoner-1",
        "Els Bakker",
        "resident",
    )
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    await ws.send_json(offer)
    await ws.send_json({"type": "ping"})
    assert await _receive(ws) == {"type": "pong"}
    assert session.received == [offer, {"type": "ping"}]
    await ws.close()


async def test_room_named_in_a_valid_token_is_created_on_first_join(harness: Harness) -> None:
    assert await harness.store.get("nieuw") is None
    ws, _ = await _join(harness, _token(room="nieuw"))
    room = await harness.store.get("nieuw")
    assert room is not None and room.display_name is None
    await ws.close()


async def test_first_message_that_is_not_json_closes_with_bad_json(harness: Harness) -> None:
    ws = await harness.client.ws_connect("/rtc")
    await ws.send_str("{not json")
    await _expect_fatal(ws, "bad_json", 4400)


@pytest.mark.parametrize("payload", ["[1, 2]", '"join"', '{"token": "x"}', '{"type": 3}'])
async def test_first_message_without_a_string_type_closes_with_bad_json(
    harness: Harness, payload: str
) -> None:
    ws = await harness.client.ws_connect("/rtc")
    await ws.send_str(payload)
    await _expect_fatal(ws, "bad_json", 4400)


async def test_first_message_other_than_join_closes_with_join_required(harness: Harness) -> None:
    ws = await harness.client.ws_connect("/rtc")
    await ws.send_json({"type": "offer", "sdp": "v=0"})
    await _expect_fatal(ws, "join_required", 4400)
    assert harness.sfu.sessions == []


async def test_binary_first_message_closes_with_bad_message(harness: Harness) -> None:
    ws = await harness.client.ws_connect("/rtc")
    await ws.send_bytes(b'{"type": "join"}')
    await _expect_fatal(ws, "bad_message", 4400)


async def test_join_with_badly_signed_token_closes_with_invalid_token(harness: Harness) -> None:
    token = issue_join_token("z" * 64, "balie-1", "x", "X", "guest", 600)
    ws = await harness.client.ws_connect("/rtc")
    await ws.send_json({"type": "join", "token": token})
    await _expect_fatal(ws, "invalid_token", 4401)
    assert harness.sfu.sessions == []


@pytest.mark.parametrize("token", [None, 12, "", "garbage"])
async def test_join_without_a_usable_token_closes_with_invalid_token(
    harness: Harness, token: object
) -> None:
    ws = await harness.client.ws_connect("/rtc")
    message: dict[str, Any] = {"type": "join"}
    if token is not None:
        message["token"] = token
    await ws.send_json(message)
    await _expect_fatal(ws, "invalid_token", 4401)


async def test_join_with_expired_token_closes_with_token_expired(harness: Harness) -> None:
    token = issue_join_token(TOKEN_SECRET, "balie-1", "x", "X", "guest", 60, now=time.time() - 3600)
    ws = await harness.client.ws_connect("/rtc")
    await ws.send_json({"type": "join", "token": token})
    await _expect_fatal(ws, "token_expired", 4401)


async def test_join_with_token_for_an_invalid_room_closes_with_invalid_token(
    harness: Harness,
) -> None:
    now = int(time.time())
    claims = {
        "room": "../other room",
        "sub": "x",
        "name": "X",
        "role": "guest",
        "iat": now,
        "exp": now + 600,
        "aud": AUDIENCE,
    }
    ws = await harness.client.ws_connect("/rtc")
    await ws.send_json({"type": "join", "token": jwt.encode(claims, TOKEN_SECRET)})
    await _expect_fatal(ws, "invalid_token", 4401)
    assert len(harness.store) == 0


async def test_join_into_a_full_room_closes_with_room_full(tmp_path: Path) -> None:
    sfu = FakeSfu(max_participants_per_room=1)
    async with running_app(tmp_path, sfu=sfu) as harness:
        first, _ = await _join(harness, _token(identity="a"))
        ws = await harness.client.ws_connect("/rtc")
        await ws.send_json({"type": "join", "token": _token(identity="b")})
        await _expect_fatal(ws, "room_full", 4429)
        await first.close()


async def test_no_join_within_the_timeout_closes_with_join_timeout(harness: Harness) -> None:
    started = time.monotonic()
    ws = await harness.client.ws_connect("/rtc")
    await _expect_fatal(ws, "join_timeout", 4408)
    assert 0.25 <= time.monotonic() - started < 1.5


async def test_a_new_connection_works_after_another_one_failed(harness: Harness) -> None:
    bad = await harness.client.ws_connect("/rtc")
    await bad.send_str("nonsense")
    await _expect_fatal(bad, "bad_json", 4400)
    good, session = await _join(harness)
    await good.send_json({"type": "ping"})
    assert await _receive(good) == {"type": "pong"}
    assert session.received == [{"type": "ping"}]
    await good.close()


async def test_socket_closing_without_leave_tells_the_session_signalling_was_lost(
    harness: Harness,
) -> None:
    ws, session = await _join(harness)
    await ws.close()
    await _wait_for(session.lost)
    assert not session.closed  # the SFU decides; it keeps the participant for a grace period


async def test_leave_is_passed_to_the_session_and_the_socket_closes_normally(
    harness: Harness,
) -> None:
    ws, session = await _join(harness)
    await ws.send_json({"type": "leave"})
    await _expect_close(ws, 1000)
    assert session.received == [{"type": "leave"}]
    assert session.close_reason == "left"
    await asyncio.sleep(0.05)
    assert not session.lost.is_set()


async def test_session_ended_by_the_sfu_closes_the_socket_with_its_close_code(
    harness: Harness,
) -> None:
    first, first_session = await _join(harness, _token(identity="same"))
    second, _ = await _join(harness, _token(identity="same"))
    replaced = await _receive(first)
    assert replaced["code"] == "replaced"
    await _expect_close(first, 4409)
    assert first_session.close_reason == "replaced"
    await second.send_json({"type": "ping"})
    assert await _receive(second) == {"type": "pong"}
    await second.close()


async def test_bad_json_after_join_is_fatal_and_ends_the_session_at_once(
    harness: Harness,
) -> None:
    ws, session = await _join(harness)
    await ws.send_str("{")
    await _expect_fatal(ws, "bad_json", 4400)
    await _wait_for(session._closed)
    assert session.close_reason == "error"
    assert session.received == []


@pytest.mark.parametrize("payload", ["[]", "null", '{"sdp": "x"}', '{"type": null}'])
async def test_message_after_join_without_string_type_is_bad_json(
    harness: Harness, payload: str
) -> None:
    ws, session = await _join(harness)
    await ws.send_str(payload)
    await _expect_fatal(ws, "bad_json", 4400)
    assert session.received == []


async def test_binary_message_after_join_is_fatal_bad_message(harness: Harness) -> None:
    ws, _ = await _join(harness)
    await ws.send_bytes(b"\x00\x01")
    await _expect_fatal(ws, "bad_message", 4400)


async def test_message_larger_than_256_kib_is_rejected(harness: Harness) -> None:
    ws, session = await _join(harness)
    await ws.send_str(json.dumps({"type": "offer", "sdp": "a" * (256 * 1024)}))
    await _expect_fatal(ws, "bad_message", 4400)
    assert session.received == []


async def test_fatal_error_from_the_session_is_sent_and_closes_with_its_code(
    harness: Harness,
) -> None:
    ws, session = await _join(harness)
    await ws.send_json({"type": "dance"})
    await _expect_fatal(ws, "unknown_type", 4400)
    assert session.received == [{"type": "dance"}]


async def test_non_fatal_error_from_the_session_keeps_the_socket_open(harness: Harness) -> None:
    ws, _ = await _join(harness)
    await ws.send_json({"type": "candidate", "candidate": "garbage"})
    error = await _receive(ws)
    assert (error["code"], error["fatal"]) == ("bad_candidate", False)
    await ws.send_json({"type": "ping"})
    assert await _receive(ws) == {"type": "pong"}
    await ws.close()


async def test_closing_the_app_closes_the_sfu_and_open_sockets(tmp_path: Path) -> None:
    sfu = FakeSfu()
    async with running_app(tmp_path, sfu=sfu) as harness:
        ws, session = await _join(harness)
    assert sfu.closed
    assert session.closed
    assert ws.closed


def _watch_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("rtc-watch-")]


async def test_no_watch_task_is_left_running_after_the_socket_closes(harness: Harness) -> None:
    ws, session = await _join(harness)
    assert len(_watch_tasks()) == 1
    await ws.close()
    await _wait_for(session.lost)
    await asyncio.sleep(0)
    assert _watch_tasks() == []


async def test_no_watch_task_is_left_running_after_leave(harness: Harness) -> None:
    ws, _ = await _join(harness)
    await ws.send_json({"type": "leave"})
    await _expect_close(ws, 1000)
    for _ in range(50):
        if not _watch_tasks():
            break
        await asyncio.sleep(0.01)
    assert _watch_tasks() == []


async def test_signalling_lost_is_reported_by_a_server_that_does_not_cancel_handlers(
    tmp_path: Path,
) -> None:
    # TestServer cancels handlers when the connection drops; a plain AppRunner (as `balie serve`
    # uses) does not. Both must end in signalling_lost().
    sfu = FakeSfu()
    app = create_app(make_settings(tmp_path), sfu, signalling=SignallingOptions(heartbeat=None))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with ClientSession() as http:
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/rtc")
            await ws.send_json({"type": "join", "token": _token()})
            assert (await _receive(ws))["type"] == "joined"
            await ws.close()
            await _wait_for(sfu.sessions[0].lost)
    finally:
        await runner.cleanup()
    assert sfu.closed
