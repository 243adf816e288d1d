"""``inspector records list|export-csv|export-corrections``: the inspection log from the shell."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspector_agent.atomic_files import check_output_file
from inspector_agent.cli import UserError, at_least
from inspector_agent.records import RecordStore
from inspector_agent.records_export import export_corrections_jsonl, export_csv
from inspector_agent.settings import Settings


def register(subparsers: Any) -> None:
    """Add the ``records`` command group."""
    parser = subparsers.add_parser("records", help="list and export the inspection log")
    group = parser.add_subparsers(dest="records_command", metavar="ACTION", required=True)

    listing = group.add_parser("list", help="list inspections, newest first")
    _filters(listing)
    listing.add_argument("--limit", type=at_least(1), default=50, help="at most this many rows")
    listing.set_defaults(func=_list)

    export = group.add_parser("export-csv", help="write the history as CSV")
    export.add_argument("path", help="output CSV file")
    _filters(export)
    export.set_defaults(func=_export_csv)

    corrections = group.add_parser(
        "export-corrections", help="write reviewed inspections as training JSONL"
    )
    corrections.add_argument("path", help="output JSONL file")
    corrections.add_argument(
        "--only-corrected", action="store_true", help="leave out verdicts marked right"
    )
    corrections.set_defaults(func=_export_corrections)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--product", help="product id")
    parser.add_argument("--serial", help="serial or lot number")
    parser.add_argument("--verdict", choices=["ok", "defective"])
    parser.add_argument("--since", help="from this date (YYYY-MM-DD, UTC)")
    parser.add_argument("--until", help="before this date (YYYY-MM-DD, UTC)")


def _query(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "product_id": args.product,
        "serial": args.serial,
        "verdict": args.verdict,
        "since": args.since,
        "until": args.until,
    }


def _list(args: argparse.Namespace, settings: Settings) -> int:
    store = RecordStore(settings.records_path)
    try:
        rows = store.query(limit=args.limit, **_query(args))
    finally:
        store.close()
    for r in rows:
        labels = ",".join(r.labels) or "-"
        print(f"{r.id}\t{r.ts}\t{r.product_id}\t{r.serial or '-'}\t{r.verdict}\t{labels}")
    if not rows:
        print("no inspections match")
    return 0


def _export(path: Path, write: Callable[[], int]) -> int:
    """Run one export into ``path``; a failed write is one line, the log untouched."""
    check_output_file(path, "export")  # before the log is read
    try:
        return write()
    except OSError as exc:
        raise UserError(f"{path}: cannot write the export ({exc.strerror or exc})") from None


def _export_csv(args: argparse.Namespace, settings: Settings) -> int:
    store = RecordStore(settings.records_path)
    try:
        count = _export(Path(args.path), lambda: export_csv(store, args.path, **_query(args)))
    finally:
        store.close()
    print(f"wrote {count} inspections to {args.path}")
    return 0


def _export_corrections(args: argparse.Namespace, settings: Settings) -> int:
    store = RecordStore(settings.records_path)
    try:
        count = _export(
            Path(args.path),
            lambda: export_corrections_jsonl(
                store, args.path, include_confirmed=not args.only_corrected
            ),
        )
    finally:
        store.close()
    print(f"wrote {count} reviewed examples to {args.path}")
    return 0
