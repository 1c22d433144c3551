"""The `balie` command line."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientSession

from control.cli import main, run_server
from control.config import Settings, api_key_path, token_secret_path
from control.tokens import verify_join_token
from tests.control_fakes import FakeSfu

REPO = Path(__file__).resolve().parent.parent


def _token_from_url(url: str) -> str:
    parts = urlsplit(url)
    assert parts.path == "/call"
    assert parts.query == ""
    assert parts.fragment.startswith("token=")
    return parts.fragment.removeprefix("token=")


def test_token_command_prints_a_join_url_whose_token_verifies_with_the_data_dir_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "token",
            "--room",
            "balie-1",
            "--identity",
            "inwoner-9",
            "--name",
            "Kees",
            "--role",
            "guest",
            "--ttl",
            "120",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("http://127.0.0.1:8080/call#token=")
    secret = token_secret_path(tmp_path).read_text().strip()
    claims = verify_join_token(secret, _token_from_url(last))
    assert (claims.room, claims.identity, claims.name, claims.role) == (
        "balie-1",
        "inwoner-9",
        "Kees",
        "guest",
    )
    assert claims.expires_at - claims.issued_at == 120


def test_token_command_defaults_name_to_identity_and_role_to_resident(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["token", "--room", "r", "--identity", "Piet", "--data-dir", str(tmp_path)]
    assert main([*args, "--base-url", "https://balie.gemeente.nl/"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("https://balie.gemeente.nl/call#token=")
    secret = token_secret_path(tmp_path).read_text().strip()
    claims = verify_join_token(secret, _token_from_url(last))
    assert (claims.name, claims.role) == ("Piet", "resident")


def test_token_command_uses_the_same_secret_as_the_server(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, env={})
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", out)
        main(["token", "--room", "r", "--identity", "x", "--data-dir", str(tmp_path)])
    token = _token_from_url(out.getvalue().strip().splitlines()[-1])
    assert verify_join_token(settings.token_secret, token).identity == "x"


@pytest.mark.parametrize(
    "extra",
    [
        ["--room", "bad room", "--identity", "x"],
        ["--room", "r", "--identity", ""],
        ["--room", "r", "--identity", "x", "--ttl", "5"],
        ["--room", "r", "--identity", "x", "--base-url", "ftp://x"],
        ["--room", "r", "--identity", "x", "--name", "\x01"],
    ],
)
def test_token_command_with_bad_input_exits_2_with_a_message_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    data_dir = tmp_path / "data"
    assert main(["token", *extra, "--data-dir", str(data_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip()
    assert "token=" not in captured.out
    assert not data_dir.exists()  # nothing is created for a mistyped command


def test_token_command_with_unknown_role_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["token", "--room", "r", "--identity", "x", "--role", "admin"])
    assert info.value.code == 2
    assert "role" in capsys.readouterr().err


def test_python_m_control_cli_token_prints_the_url_last(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("BALIE_BASE_URL", None)
    args = ["token", "--room", "r1", "--identity", "m", "--data-dir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "control.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    secret = token_secret_path(tmp_path).read_text().strip()
    assert verify_join_token(secret, _token_from_url(last)).room == "r1"


async def test_server_prints_where_things_are_serves_and_closes_the_sfu_on_stop(
    tmp_path: Path,
) -> None:
    settings = Settings.load(port=0, data_dir=tmp_path, env={})
    sfu = FakeSfu()
    stop = asyncio.Event()
    out = io.StringIO()
    task = asyncio.create_task(run_server(settings, sfu, stop=stop, derive_base_url=True, out=out))
    try:
        for _ in range(200):
            if "listening" in out.getvalue() or task.done():
                break
            await asyncio.sleep(0.01)
        banner = out.getvalue()
        first = banner.splitlines()[0]
        url = first.split("listening on ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert settings.base_url == url
        assert str(tmp_path) in banner
        assert str(api_key_path(tmp_path)) in banner
        assert f"balie token --room ROOM --identity ID --data-dir {tmp_path}" in banner
        assert settings.api_key not in banner
        assert settings.token_secret not in banner
        async with ClientSession() as http, http.get(f"{url}/healthz") as response:
            assert await response.json() == {"status": "ok"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert sfu.closed
