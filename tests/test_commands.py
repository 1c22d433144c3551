"""`balie`'s subcommands: parts contribute them through the `balie.commands` entry points."""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import common.commands
import control.recording_cli
import loadtest.cli
from common.commands import ENTRY_POINT_GROUP, add_commands, discover, run_function
from control.cli import build_parser, main
from recorder.service import SECRET_ENV


def _fake_entry_points(*entries: EntryPoint):
    def entry_points(*, group: str) -> list[EntryPoint]:
        return [entry for entry in entries if entry.group == group]

    return entry_points


def test_the_load_generator_is_found_through_its_entry_point():
    assert discover()["loadtest"] is loadtest.cli


def test_balie_loadtest_runs_the_load_generators_run_function():
    args = build_parser().parse_args(["loadtest", "fanout", "--subscribers", "3"])
    assert run_function(args) is loadtest.cli.run
    assert args.subscribers == 3


def test_balie_recording_is_a_command_of_the_same_protocol():
    args = build_parser().parse_args(["recording", "verify", "rec_0123456789abcdef"])
    assert run_function(args) is control.recording_cli.run


def test_balie_serve_and_token_are_not_plugin_commands():
    assert run_function(build_parser().parse_args(["serve"])) is None
    args = build_parser().parse_args(["token", "--room", "r", "--identity", "i"])
    assert run_function(args) is None


def test_an_entry_point_without_add_parser_and_run_is_refused(monkeypatch):
    broken = EntryPoint("broken", "json", ENTRY_POINT_GROUP)
    monkeypatch.setattr(common.commands, "entry_points", _fake_entry_points(broken))
    with pytest.raises(TypeError, match="broken = json"):
        discover()


def test_a_command_that_adds_a_subcommand_under_another_name_is_refused():
    class Misnamed:
        def add_parser(self, commands):
            return commands.add_parser("other")

        def run(self, args: argparse.Namespace) -> int:
            return 0

    commands = argparse.ArgumentParser(prog="balie").add_subparsers(dest="command")
    with pytest.raises(ValueError, match="'named'"):
        add_commands(commands, {"named": Misnamed()})


def test_a_command_error_is_printed_and_exits_with_2(tmp_path: Path, capsys):
    code = main(["recording", "verify", "not-an-id", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "balie: not a recording id: 'not-an-id'" in capsys.readouterr().err


def test_balie_recorder_without_the_control_planes_secret_creates_no_key(
    tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    assert main(["recorder", "--port", "1", "--data-dir", str(tmp_path / "data")]) == 2
    assert SECRET_ENV in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
