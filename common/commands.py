"""Subcommands of `balie` that a part contributes without the control plane importing it.

A part offers a subcommand (`balie loadtest`, ...) by naming an object in the `balie.commands`
entry-point group of pyproject.toml; the entry point's name is the subcommand's name:

    [project.entry-points."balie.commands"]
    loadtest = "loadtest.cli"

The object (usually a module) satisfies `Command`: `add_parser(commands)` adds the subcommand's
parser to `balie`'s subparsers and returns it, and `run(args)` runs it and returns the exit code.
`balie` (control/cli.py) finds the entry points with importlib.metadata (`discover`) and wires
them with `add_commands`; its own subcommands use the same protocol.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Protocol

__all__ = [
    "ENTRY_POINT_GROUP",
    "RUN_ATTRIBUTE",
    "Command",
    "CommandError",
    "Subparsers",
    "add_commands",
    "discover",
    "run_function",
]

ENTRY_POINT_GROUP = "balie.commands"
# The parsed arguments of a wired subcommand carry its run function under this name.
RUN_ATTRIBUTE = "run_command"

Subparsers = argparse._SubParsersAction  # argparse's type for `add_subparsers()`


class CommandError(Exception):
    """Bad input to a command: `balie` prints it on stderr and exits with 2."""


class Command(Protocol):
    """One `balie` subcommand."""

    def add_parser(self, commands: Subparsers[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        """Add the subcommand (`commands.add_parser(NAME, ...)`) with its options; return it."""
        ...

    def run(self, args: argparse.Namespace) -> int:
        """Run the subcommand with the parsed arguments; the process's exit code."""
        ...


def discover(group: str = ENTRY_POINT_GROUP) -> dict[str, Command]:
    """The commands registered in the entry-point group, by name (sorted)."""
    found: dict[str, Command] = {}
    for entry in sorted(entry_points(group=group), key=lambda entry: entry.name):
        command = entry.load()
        if not (
            callable(getattr(command, "add_parser", None))
            and callable(getattr(command, "run", None))
        ):
            raise TypeError(
                f"{group} entry point {entry.name} = {entry.value} has no add_parser and run"
            )
        found[entry.name] = command
    return found


def add_commands(
    commands: Subparsers[argparse.ArgumentParser], registered: Mapping[str, Command]
) -> None:
    """Add each command's parser; the parsed arguments then carry its run function."""
    for name, command in registered.items():
        parser = command.add_parser(commands)
        if parser.prog.rsplit(" ", 1)[-1] != name:
            raise ValueError(f"command {name!r} added a subcommand named {parser.prog!r}")
        parser.set_defaults(**{RUN_ATTRIBUTE: command.run})


def run_function(args: argparse.Namespace) -> Callable[[argparse.Namespace], int] | None:
    """The run function of the subcommand that `args` were parsed for (None: not a wired one)."""
    run: Callable[[argparse.Namespace], int] | None = getattr(args, RUN_ATTRIBUTE, None)
    return run
