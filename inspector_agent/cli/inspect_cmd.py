"""``inspector inspect IMAGE_OR_DIR``: verdict, defects and overlay for one image or a folder."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from inspector_agent.atomic_files import check_output_folder
from inspector_agent.cli import at_least
from inspector_agent.errors import InspectorError
from inspector_agent.imaging import IMAGE_SUFFIXES, image_files
from inspector_agent.schema import InspectionResult, Verdict
from inspector_agent.settings import Settings


class InspectInputError(InspectorError):
    """Bad input to ``inspector inspect`` (printed as one line, exit code 2)."""


def register(subparsers: Any) -> None:
    """Add the ``inspect`` command."""
    parser = subparsers.add_parser("inspect", help="inspect an image (or a folder of images)")
    parser.add_argument("target", metavar="IMAGE_OR_DIR", help="query image or folder of images")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--references", metavar="DIR", help="folder of known-good images")
    source.add_argument("--product", metavar="ID", help="product id in the knowledge base")
    parser.add_argument("--grounder", default=None, help="expert | vlm | local | fusion")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--overlay",
        metavar="OUT.png|DIR",
        help="write the annotated image (for a folder: a folder, one <name>_overlay.png each)",
    )
    parser.add_argument("--model", metavar="PATH", help="checkpoint for the local grounder")
    parser.add_argument("--model-url", metavar="URL", help="OpenAI-compatible model server (vlm)")
    parser.add_argument(
        "--concurrency", type=at_least(1), default=8, help="requests in flight (vlm)"
    )
    parser.set_defaults(func=run)


def _note_skipped(folder: Path, images: list[Path]) -> None:
    """Say on stderr which entries of ``folder`` are not inspected (subfolders, other files)."""
    taken = set(images)
    names = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in folder.iterdir()
        if p not in taken and not p.name.startswith(".")
    )
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        print(
            f"note: only image files directly in the folder are inspected, not {shown}",
            file=sys.stderr,
        )


def _reference_set(args: argparse.Namespace, settings: Settings):
    from inspector_agent.grounding.base import ReferenceSet

    if args.product:
        try:
            from inspector_agent.kb import references_for_product
        except ImportError as exc:
            raise InspectInputError(
                f"--product needs the knowledge base, unavailable: {exc}"
            ) from None
        return references_for_product(args.product, settings)
    folder = Path(args.references)
    if folder.is_file():
        raise InspectInputError(f"{folder}: is a file; --references takes a folder of good images")
    if not folder.is_dir():
        raise InspectInputError(f"{folder}: reference folder not found")
    paths = image_files(folder)
    if not paths:
        names = ", ".join(s[1:] for s in IMAGE_SUFFIXES)
        raise InspectInputError(f"{folder}: no reference images ({names})")
    return ReferenceSet(product_id=folder.name, paths=paths)


def _check_references(refs) -> None:
    from inspector_agent.imaging import load_image

    if not refs.paths:
        raise InspectInputError(f"product {refs.product_id!r}: no reference images")
    for path in refs.paths:
        load_image(path)  # raises ImageError naming the file


def _print_human(name: str, result) -> None:
    threshold = "none" if result.threshold is None else f"{result.threshold:.3f}"
    print(f"{name}: {result.verdict.value} (score {result.pred_score:.3f}, threshold {threshold})")
    for d in result.defects:
        print(f"  {d.label} box={d.box.to_list()} score={d.score:.3f}")
    for note in result.notes:  # e.g. the model server was down and the expert answered
        print(f"  note: {note}")


def _overlay_folder(option: str | None, target: Path) -> Path | None:
    """Where a folder's overlays go, checked before any work (never the input folder)."""
    from inspector_agent.overlay import OVERLAY_FORMATS

    if not option:
        return None
    folder = Path(option)
    if folder.suffix.lower() in OVERLAY_FORMATS or (folder.exists() and not folder.is_dir()):
        raise InspectInputError(f"{folder}: with a folder of images, --overlay names a folder")
    if folder.resolve() == target.resolve():
        raise InspectInputError(f"{folder}: overlays may not go into the folder being inspected")
    return check_output_folder(folder, "overlays")


def _overlay_files(images: list[Path], folder: Path | None) -> dict[Path, Path]:
    """One ``<stem>_overlay.png`` per image; the extension joins the stem where stems repeat."""
    if folder is None:
        return {}
    stems = Counter(path.stem for path in images)
    return {
        path: folder
        / f"{path.stem if stems[path.stem] == 1 else path.name.replace('.', '_')}_overlay.png"
        for path in images
    }


def folder_summary(results: list[InspectionResult], failures: int) -> str:
    """One line for the end of a folder: how many parts were defective, close calls, OK."""
    defective = sum(r.verdict == Verdict.DEFECTIVE for r in results)
    close = sum(r.close_call for r in results)
    parts = [f"{defective} defective", f"{len(results) - defective - close} ok"]
    if close:
        parts.insert(1, f"{close} close call{'s' if close > 1 else ''} (ok, worth a look)")
    if failures:
        parts.append(f"{failures} could not be read")
    total = len(results) + failures
    return f"inspected {total} image{'s' if total != 1 else ''}: " + ", ".join(parts)


def _emit(path: Path, image, result, overlay: Path | None) -> None:
    """One JSON line for one image of a folder, its overlay written first."""
    from inspector_agent.overlay import render_overlay, save_overlay

    record = {"image": str(path), **result.to_dict()}
    if overlay is not None:
        record["overlay"] = str(save_overlay(render_overlay(image, result), overlay))
    print(json.dumps(record), flush=True)


def _run_batch(
    grounder, images: list[Path], refs, concurrency: int, overlays: dict[Path, Path]
) -> int:
    """A folder through a model grounder, ``concurrency`` requests at a time; JSONL in order."""
    from tqdm import tqdm

    from inspector_agent.grounding import GroundingRequest
    from inspector_agent.imaging import load_image

    requests, names, failures = [], [], 0
    for path in images:
        try:
            requests.append(GroundingRequest(load_image(path), refs, query_name=path.name))
            names.append(path)
        except InspectorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
    with tqdm(total=len(requests), desc="inspect", unit="img", file=sys.stderr) as bar:
        results = grounder.ground_many(requests, concurrency, lambda _: bar.update())
    for path, request, result in zip(names, requests, results, strict=True):
        _emit(path, request.query, result, overlays.get(path))
    print(folder_summary(results, failures), file=sys.stderr)
    return 2 if failures else 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Inspect one image or every image of a folder; 2 on bad input."""
    from inspector_agent.grounding import GroundingRequest, make_grounder
    from inspector_agent.imaging import load_image
    from inspector_agent.overlay import check_overlay_path, render_overlay, save_overlay

    if args.grounder:
        settings = settings.with_overrides(grounder=args.grounder)
    settings = settings.with_overrides(model_path=args.model, model_url=args.model_url)
    target = Path(args.target)
    if not target.exists():
        raise InspectInputError(f"{target}: file not found")
    if target.is_dir():
        images = image_files(target)
        if not images:
            raise InspectInputError(f"{target}: no images in folder")
        _note_skipped(target, images)
        overlays = _overlay_files(images, _overlay_folder(args.overlay, target))
    elif args.overlay:
        check_overlay_path(args.overlay)
    refs = _reference_set(args, settings)
    _check_references(refs)
    image = None if target.is_dir() else load_image(target)
    grounder = make_grounder(settings.grounder, settings)
    if target.is_dir():
        if hasattr(grounder, "ground_many"):  # model grounders batch their requests
            return _run_batch(grounder, images, refs, max(1, args.concurrency), overlays)
        from tqdm import tqdm

        failures, results = 0, []
        for path in tqdm(images, desc="inspect", unit="img", file=sys.stderr):
            try:
                query = load_image(path)
                result = grounder.ground(GroundingRequest(query, refs, query_name=path.name))
                _emit(path, query, result, overlays.get(path))
                results.append(result)
            except InspectorError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failures += 1
        print(folder_summary(results, failures), file=sys.stderr)
        return 2 if failures else 0
    result = grounder.ground(GroundingRequest(image, refs, query_name=target.name))
    if args.json:
        print(json.dumps({"image": str(target), **result.to_dict()}, indent=2), flush=True)
    else:
        _print_human(target.name, result)
    if args.overlay:  # after the verdict is out, so a failed write loses nothing else
        written = save_overlay(render_overlay(image, result), args.overlay)
        if not args.json:
            print(f"  overlay: {written}")
    return 0
