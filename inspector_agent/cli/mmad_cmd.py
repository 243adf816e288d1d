"""``inspector eval mmad``: the MMAD multiple-choice protocol for the vlm or local model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inspector_agent.atomic_files import check_output_file
from inspector_agent.cli import at_least
from inspector_agent.cli.eval_cmd import write_report
from inspector_agent.settings import Settings


def add_parser(group: Any) -> None:
    """Add ``mmad`` to the ``inspector eval`` group."""
    mmad = group.add_parser("mmad", help="MMAD benchmark accuracy (1-shot, per task)")
    mmad.add_argument("--mmad-json", required=True, metavar="FILE", help="MMAD's mmad.json")
    mmad.add_argument("--images-root", required=True, metavar="DIR", help="MMAD image folder")
    mmad.add_argument("--grounder", choices=("vlm", "local"), default="vlm")
    mmad.add_argument(
        "--shots", type=at_least(0), default=1, help="normal templates per question (1)"
    )
    mmad.add_argument("--limit", type=at_least(1), help="ask only the first N questions")
    mmad.add_argument("--seed", type=int, default=0, help="seed of the template draw")
    mmad.add_argument("--concurrency", type=at_least(1), default=8, help="requests in flight (vlm)")
    mmad.add_argument("--max-tokens", type=at_least(1), default=512, help="answer length cap")
    mmad.add_argument("--model", metavar="PATH", help="checkpoint for --grounder local")
    mmad.add_argument("--model-url", metavar="URL", help="model server for --grounder vlm")
    mmad.add_argument("--json", dest="json_out", metavar="OUT.json", help="write the report")
    mmad.set_defaults(func=run_mmad)


def run_mmad(args: argparse.Namespace, settings: Settings) -> int:
    """Ask every question, print the task table, optionally write the JSON report."""
    from tqdm import tqdm

    from inspector_agent.evaluation.mmad import MmadError, evaluate_mmad, load_questions
    from inspector_agent.grounding.local import local_backend
    from inspector_agent.grounding.vlm import vlm_backend

    settings = settings.with_overrides(model_path=args.model, model_url=args.model_url)
    if args.grounder == "vlm":
        backend = vlm_backend(settings, max_tokens=args.max_tokens)
        problem = backend.health()
        if problem:
            raise MmadError(problem)
    else:
        backend = local_backend(settings, max_new_tokens=args.max_tokens)
    if args.json_out:  # before the questions are asked
        check_output_file(args.json_out, "report")
    total = len(load_questions(args.mmad_json, args.limit))
    with tqdm(total=total, desc="mmad", unit="q", file=sys.stderr) as bar:
        report = evaluate_mmad(
            args.mmad_json,
            args.images_root,
            backend,
            shots=args.shots,
            limit=args.limit,
            seed=args.seed,
            concurrency=max(1, args.concurrency),
            on_done=lambda _: bar.update(),
        )
    data = report.to_dict()
    for task, value in data["tasks"].items():
        print(f"{task:28s}{value:8.2f}")
    print(f"{'average':28s}{data['average']:8.2f}  ({report.questions} questions)")
    for error in data["errors"]:
        print(f"error: {error}", file=sys.stderr)
    if args.json_out:  # after the table, so a failed write still shows the numbers
        write_report(Path(args.json_out), data)
    return 0
