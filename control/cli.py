"""The `balie` command: run the server (`balie serve`) or make a join link (`balie token`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from aiohttp import web

from common.childprocess import freeze_startup_objects
from common.commands import CommandError, add_commands, discover, run_function
from control import recording_cli
from control.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ENV_API_KEY,
    ENV_BASE_URL,
    WILDCARD_HOSTS,
    IPNetwork,
    Settings,
    default_base_url,
    default_data_dir,
    load_recording_key,
    load_token_secret,
    normalise_base_url,
    url_host,
)
from control.sfu_types import SfuLike
from control.tokens import (
    DEFAULT_TTL_SECONDS,
    ROLES,
    issue_join_token,
    validate_identity,
    validate_name,
    validate_role,
    validate_room_id,
    validate_ttl,
)

log = logging.getLogger(__name__)

DEFAULT_TOKEN_BASE_URL = default_base_url(DEFAULT_HOST, DEFAULT_PORT)


CliError = CommandError  # bad input: printed on stderr, exit code 2


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535: {value!r}")
    return port


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {value!r}") from None


def _network(value: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a network (CIDR): {value!r}") from None


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="balie", description="Digitale Balie: open-source video counter."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (%(default)s)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (%(default)s)")
    serve.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (BALIE_DATA_DIR or ./data)"
    )
    serve.add_argument(
        "--rtc-ip",
        dest="rtc_ips",
        type=_ip,
        action="append",
        default=[],
        metavar="IP",
        help="address media is sent from and to (repeatable; default: this machine's addresses)",
    )
    serve.add_argument(
        "--workers",
        type=_int,
        default=None,
        metavar="N",
        help="SFU worker processes (default: one per core; 1 runs the SFU in this process)",
    )
    serve.add_argument(
        "--max-participants",
        type=_int,
        default=32,
        metavar="N",
        help="most people in one room (%(default)s; load tests may need more)",
    )
    serve.add_argument(
        "--allow-network",
        dest="allowed_networks",
        type=_network,
        action="append",
        default=[],
        metavar="CIDR",
        help="network participants may send media from (repeatable)",
    )
    serve.add_argument(
        "--base-url", default=None, help="public URL of this server, used in join links"
    )
    serve.add_argument(
        "--mandatory-recording",
        dest="mandatory_recording",
        action="append",
        default=None,
        metavar="CASE_TYPE",
        help="case type whose calls may be recorded without consent because the law requires "
        "it (repeatable; default: BALIE_MANDATORY_RECORDING_CASE_TYPES, comma-separated)",
    )
    serve.add_argument(
        "--theme-css",
        type=Path,
        default=None,
        metavar="FILE",
        help="the municipality's design tokens stylesheet (NL Design System), loaded by the "
        "pages after the default Voorbeeld theme (docs/design-system.md)",
    )
    serve.add_argument(
        "--theme-class",
        default=None,
        metavar="NAME",
        help="the theme class of --theme-css, put on <html> (default: the stylesheet's first "
        "class selector)",
    )

    # Subcommands of other parts (`balie loadtest`) come from the `balie.commands` entry points.
    add_commands(commands, discover())

    recorder = commands.add_parser(
        "recorder", help="run the recorder process (balie serve starts it by itself)"
    )
    recorder.add_argument("--port", type=_port, required=True, help="internal API port")
    recorder.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (BALIE_DATA_DIR or ./data)"
    )

    add_commands(commands, {"recording": recording_cli})

    token = commands.add_parser("token", help="print a join link")
    token.add_argument("--room", required=True, help="room id")
    token.add_argument("--identity", required=True, help="who the link is for (not shown)")
    token.add_argument("--name", default=None, help="name shown to others (default: identity)")
    token.add_argument("--role", default="resident", choices=ROLES, help="(%(default)s)")
    token.add_argument(
        "--ttl",
        type=_int,
        default=DEFAULT_TTL_SECONDS,
        metavar="SECONDS",
        help="how long the link is valid (%(default)s)",
    )
    token.add_argument(
        "--base-url", default=None, help=f"server URL (BALIE_BASE_URL or {DEFAULT_TOKEN_BASE_URL})"
    )
    token.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (BALIE_DATA_DIR or ./data)"
    )
    return parser


def _invoked_as() -> str:
    """How to run this command again: `.venv/bin/balie` when started that way, else `balie`."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is not None and program.name == "balie" and program.is_file():
        return str(program)
    return "balie"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run_command = run_function(args)
        if run_command is not None:
            return run_command(args)
        if args.command == "token":
            return _token_command(args)
        if args.command == "recorder":
            from recorder.service import key_from_environment
            from recorder.service import run as run_recorder

            data_dir: Path = args.data_dir if args.data_dir is not None else default_data_dir()
            return run_recorder(
                args.port, lambda: key_from_environment() or load_recording_key(data_dir.resolve())
            )
        return _serve_command(args)
    except CliError as exc:
        print(f"balie: {exc}", file=sys.stderr)
        return 2


def _token_command(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir if args.data_dir is not None else default_data_dir()
    base_url_arg: str = args.base_url or os.environ.get(ENV_BASE_URL, "").strip()
    name: str = args.name if args.name is not None else args.identity
    try:
        base_url = normalise_base_url(base_url_arg or DEFAULT_TOKEN_BASE_URL)
        # Check the input before a secret is created in a data directory that may be mistyped.
        validate_room_id(args.room, "--room")
        validate_identity(args.identity, "--identity")
        validate_name(name, "--name")
        validate_role(args.role, "--role")
        validate_ttl(args.ttl, "--ttl")
        secret = load_token_secret(data_dir)
        token = issue_join_token(secret, args.room, args.identity, name, args.role, args.ttl)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"Join link for room {args.room} ({args.role}), valid for {args.ttl} seconds:")
    print(f"{base_url}/call#token={token}", flush=True)
    return 0


def _serve_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from sfu.config import SfuConfig
    from sfu.service import Sfu

    rtc_ips: tuple[str, ...] = tuple(args.rtc_ips) or tuple(SfuConfig.default_rtc_ips())
    networks: tuple[IPNetwork, ...] = tuple(args.allowed_networks) or tuple(
        SfuConfig.default_allowed_networks(rtc_ips)
    )
    try:
        if args.theme_class is not None and args.theme_css is None:
            raise ValueError("--theme-class needs --theme-css")
        settings = Settings.load(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            rtc_ips=rtc_ips,
            allowed_networks=networks,
            base_url=args.base_url,
            mandatory_recording_case_types=(
                frozenset(args.mandatory_recording) if args.mandatory_recording else None
            ),
            theme_css=args.theme_css,
            theme_class=args.theme_class,
        )
        sfu_config = SfuConfig(
            rtc_ips=rtc_ips,
            allowed_networks=networks,
            max_participants_per_room=args.max_participants,
        )
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    # With --port 0 the port is only known once bound; then derive join links from it.
    derive_base_url = args.port == 0 and not (args.base_url or os.environ.get(ENV_BASE_URL))

    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise CliError("--workers must be at least 1")

    async def run() -> None:
        if workers == 1:
            await run_server(settings, Sfu(sfu_config), derive_base_url=derive_base_url)
            return
        from control.workers import RemoteSfu

        remote = RemoteSfu(workers, rtc_ips, networks, args.max_participants)
        try:
            await remote.start()
        except RuntimeError as exc:
            await remote.close()
            raise CliError(str(exc)) from None
        print(f"SFU workers: {workers} (one per core)", flush=True)
        await run_server(settings, remote, derive_base_url=derive_base_url)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(run())
    return 0


def _loop_factory() -> type[asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.Loop


async def run_server(
    settings: Settings,
    sfu: SfuLike,
    *,
    stop: asyncio.Event | None = None,
    derive_base_url: bool = False,
    out: TextIO | None = None,
    recording: bool = True,
) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM arrives when `stop` is None).

    With `derive_base_url` the join-link base URL is set from the port actually bound.
    """
    from control.app import create_app

    out = out if out is not None else sys.stdout
    app = create_app(settings, sfu, recording=recording)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    signals_installed: list[signal.Signals] = []
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        freeze_startup_objects()
        port = _bound_port(runner, settings.port)
        url = f"http://{url_host(settings.host)}:{port}"
        if derive_base_url:
            settings.base_url = url
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
                    signals_installed.append(sig)
        _print_banner(settings, url, out)
        await stop.wait()
        print("Stopping.", file=out, flush=True)
    finally:
        # Closes the listening socket, ends the calls (sfu.close()) and waits for open sockets.
        # The signal handlers stay until then, so a second Ctrl-C does not interrupt cleanup.
        await runner.cleanup()
        loop = asyncio.get_running_loop()
        for sig in signals_installed:
            loop.remove_signal_handler(sig)


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
            return address[1]
    return requested


def _print_banner(settings: Settings, url: str, out: TextIO) -> None:
    if settings.api_key_file is not None:
        key_line = f"API key: in {settings.api_key_file} (send it as Authorization: Bearer <key>)"
    else:
        key_line = f"API key: from the {ENV_API_KEY} environment variable"
    lines = [
        f"Digitale Balie listening on {url}"
        + (" (on all interfaces)" if settings.host in WILDCARD_HOSTS else ""),
        f"Data directory: {settings.data_dir}",
        key_line,
        f"Join links use: {settings.base_url}/call#token=...",
        "Make a join link: "
        f"{_invoked_as()} token --room ROOM --identity ID --data-dir {settings.data_dir}"
        + (
            ""
            if settings.base_url == DEFAULT_TOKEN_BASE_URL
            else f" --base-url {settings.base_url}"
        ),
    ]
    print("\n".join(lines), file=out, flush=True)


if __name__ == "__main__":
    sys.exit(main())
