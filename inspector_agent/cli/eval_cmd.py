"""``inspector eval localization DATA_DIR``: grounder metrics on MVTec-AD-layout folders."""

from __future__ import annotations

import argparse
import json
import math
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from inspector_agent.atomic_files import (
    check_output_file,
    check_output_folder,
    replaced_folder,
    write_text_atomic,
)
from inspector_agent.cli import at_least, distinct_at_least
from inspector_agent.errors import InspectorError
from inspector_agent.settings import Settings


class EvalInputError(InspectorError):
    """Bad input to ``inspector eval`` (one line, exit code 2)."""


def write_report(path: Path, data: Any) -> None:
    """``data`` as indented JSON to ``path``, whole or not at all; a failure is one line."""
    try:
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


def register(subparsers: Any) -> None:
    """Add the ``eval`` command group (``localization``; others may add more actions)."""
    parser = subparsers.add_parser("eval", help="evaluate grounders on benchmark folders")
    group = parser.add_subparsers(dest="eval_command", metavar="BENCHMARK", required=True)
    loc = group.add_parser("localization", help="AUROC, AUPRO, box IoU and F1 on MVTec-style data")
    loc.add_argument(  # not "data_dir": that is the global --data-dir (store and caches)
        "dataset", metavar="DATA_DIR", help="folder of categories (or one category)"
    )
    loc.add_argument("--categories", help="comma-separated category names (default: all)")
    loc.add_argument(
        "--shots",
        type=at_least(0),
        default=4,
        help="references sampled from train/good (default 4; 0, or more than there are: all)",
    )
    loc.add_argument(
        "--seed",
        type=distinct_at_least(0),
        default=[0],
        metavar="S[,S...]",
        help="seed of the reference sampling; several (0,1,2) report each metric's median over "
        "the draws, with each draw's figures under 'seeds' (default 0)",
    )
    loc.add_argument(
        "--json",
        dest="json_out",
        required=True,
        metavar="OUT.json",
        help="write the metrics here: {categories: {name: {...}}, overall: {...}, config: {...}}",
    )
    loc.add_argument(
        "--plots",
        metavar="DIR",
        help="write ROC curves and example overlays here (default: the data directory's "
        "eval/<DATA_DIR's name>, replaced each run, which the app's Showcase tab shows)",
    )
    loc.add_argument(
        "--by-defect",
        action="store_true",
        help="also report metrics per defect type (test/<defect> folder) under 'defect_types'",
    )
    loc.add_argument("--grounder", default="expert", help="expert | vlm | local | fusion")
    loc.add_argument("--model", metavar="PATH", help="checkpoint for local (and fusion)")
    loc.add_argument("--model-url", metavar="URL", help="model server for vlm (and fusion)")
    loc.add_argument("--threads", type=at_least(1), default=2, help="torch threads (default 2)")
    loc.set_defaults(func=run_localization)
    from inspector_agent.cli.mmad_cmd import add_parser as add_mmad

    add_mmad(group)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def run_localization(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate, write the JSON report and print a short table."""
    from inspector_agent.evaluation.localization import evaluate
    from inspector_agent.evaluation.seeds import median_report
    from inspector_agent.grounding import make_grounder

    data_dir = Path(args.dataset)
    if not data_dir.is_dir():
        raise EvalInputError(f"{data_dir}: data folder not found")
    names = (
        [n.strip() for n in args.categories.split(",") if n.strip()] if args.categories else None
    )
    settings = settings.with_overrides(
        torch_threads=args.threads, model_path=args.model, model_url=args.model_url
    )
    out = check_output_file(args.json_out, "report")
    plots_dir = check_output_folder(
        args.plots or settings.eval_dir / (data_dir.resolve().name or "dataset"), "plots"
    )
    grounder = make_grounder(args.grounder, settings)
    several = len(args.seed) > 1
    reports = {}
    # a chosen folder is written in place; the default one is ours, replaced when the run is done
    with nullcontext(plots_dir) if args.plots else replaced_folder(plots_dir) as folder:
        for seed in args.seed:
            plots = folder / f"seed-{seed}" if several else folder
            try:
                reports[seed] = evaluate(
                    data_dir, grounder, names, args.shots, seed, plots, args.by_defect
                )
            except FileNotFoundError as exc:
                raise EvalInputError(str(exc)) from None
    report = median_report(reports) if several else reports[args.seed[0]]
    if several:
        print(f"median over seeds {', '.join(map(str, args.seed))}:", file=sys.stderr)
    rows = {**report["categories"], "overall": report["overall"]}
    metrics = list(report["overall"])
    print("category".ljust(16) + "".join(m[:14].rjust(15) for m in metrics), file=sys.stderr)
    for name, values in rows.items():
        cells = "".join(f"{values[m]:15.3f}" for m in metrics)
        print(name[:15].ljust(16) + cells, file=sys.stderr)
    if args.by_defect:
        _print_defect_types(report["defect_types"])
    for name in report["config"].get("without_masks", []):
        print(f"{name}: no ground-truth masks, so only image metrics are given", file=sys.stderr)
    write_report(out, _clean(report))  # after the table, so a failed write still shows it
    print(f"plots: {plots_dir}", file=sys.stderr)
    return 0


def _print_defect_types(breakdown: dict[str, dict[str, dict[str, float]]]) -> None:
    columns = ("images", "image_auroc", "pixel_auroc", "box_acc_iou30", "recall")
    header = "category/defect".ljust(34) + "".join(c.rjust(15) for c in columns)
    print("\n" + header + "defect px share".rjust(17), file=sys.stderr)
    for category, kinds in breakdown.items():
        for kind, values in kinds.items():
            if kind == "good":
                rate = values["false_alarm_rate"]
                line = f"{values['images']:15d}" + f"false alarms {rate:.3f}".rjust(60)
            else:
                line = f"{values['images']:15d}" + "".join(
                    f"{values[c]:15.3f}" for c in columns[1:]
                )
                line += f"{values['defect_pixel_share']:17.3f}"
            print(f"{category}/{kind}"[:33].ljust(34) + line, file=sys.stderr)
