"""The ``inspector`` console script: one subcommand module per concern, each with ``register``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from importlib.util import find_spec

from inspector_agent import __version__
from inspector_agent.errors import InspectorError
from inspector_agent.settings import load_settings

SUBCOMMAND_MODULES = ("inspect_cmd", "eval_cmd", "kb_cmd", "records_cmd")


class UserError(InspectorError):
    """A problem with the command line's input: printed as one line, exit code 2."""


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number no smaller than ``minimum`` (else a usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def distinct_at_least(minimum: int) -> Callable[[str], list[int]]:
    """An argparse ``type``: distinct comma-separated whole numbers (``0,1,2``), each at least
    ``minimum``."""
    single = at_least(minimum)

    def parse(text: str) -> list[int]:
        values = [single(part.strip()) for part in text.split(",") if part.strip()]
        if not values or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"give distinct numbers separated by commas: {text!r}")
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="inspector",
        description="Inspect photos of parts against known-good references, manage the "
        "knowledge base and evaluate grounders.",
    )
    parser.add_argument("--version", action="version", version=f"inspector {__version__}")
    parser.add_argument(
        "--data-dir",
        help="data directory (store, records, caches); "
        "default $INSPECTOR_DATA_DIR or ~/.local/share/inspector",
    )
    parser.add_argument("--config", help="optional TOML settings file")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        if find_spec(f"inspector_agent.cli.{name}") is not None:
            import_module(f"inspector_agent.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for bad input, never a traceback for it)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, data_dir=args.data_dir)
        return int(args.func(args, settings) or 0)
    except InspectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
