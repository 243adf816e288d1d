"""``inspector inspect IMAGE_OR_DIR``: verdict, defects and overlay for one image or a folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inspector_agent.errors import InspectorError
from inspector_agent.settings import Settings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


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
    parser.add_argument("--overlay", metavar="OUT.png", help="write the annotated image")
    parser.add_argument("--model", metavar="PATH", help="checkpoint for the local grounder")
    parser.add_argument("--model-url", metavar="URL", help="OpenAI-compatible model server (vlm)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (vlm)")
    parser.set_defaults(func=run)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


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
    if not folder.is_dir():
        raise InspectInputError(f"{folder}: reference folder not found")
    paths = _images_in(folder)
    if not paths:
        raise InspectInputError(f"{folder}: no reference images (png, jpg, bmp, tif, webp)")
    return ReferenceSet(product_id=folder.name, paths=paths)


def _check_references(refs) -> None:
    from inspector_agent.imaging import load_image

    if not refs.paths:
        raise InspectInputError(f"product {refs.product_id!r}: no reference images")
    for path in refs.paths:
        load_image(path)  # raises ImageError naming the file


def _print_human(name: str, result) -> None:
    print(
        f"{name}: {result.verdict.value} (score {result.pred_score:.3f}, threshold {result.threshold})"
    )
    for d in result.defects:
        print(f"  {d.label} box={d.box.to_list()} score={d.score:.3f}")


def _run_batch(grounder, images: list[Path], refs, concurrency: int) -> int:
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
    for path, result in zip(names, results, strict=True):
        print(json.dumps({"image": str(path), **result.to_dict()}), flush=True)
    return 2 if failures else 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Inspect one image or every image of a folder; 2 on bad input."""
    from inspector_agent.grounding import GroundingRequest, make_grounder
    from inspector_agent.imaging import load_image

    if args.grounder:
        settings = settings.with_overrides(grounder=args.grounder)
    settings = settings.with_overrides(model_path=args.model, model_url=args.model_url)
    target = Path(args.target)
    if not target.exists():
        raise InspectInputError(f"{target}: file not found")
    refs = _reference_set(args, settings)
    _check_references(refs)
    image = None if target.is_dir() else load_image(target)
    grounder = make_grounder(settings.grounder, settings)
    if target.is_dir():
        images = _images_in(target)
        if not images:
            raise InspectInputError(f"{target}: no images in folder")
        if hasattr(grounder, "ground_many"):  # model grounders batch their requests
            return _run_batch(grounder, images, refs, max(1, args.concurrency))
        from tqdm import tqdm

        failures = 0
        for path in tqdm(images, desc="inspect", unit="img", file=sys.stderr):
            try:
                result = grounder.ground(
                    GroundingRequest(load_image(path), refs, query_name=path.name)
                )
            except InspectorError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failures += 1
                continue
            print(json.dumps({"image": str(path), **result.to_dict()}), flush=True)
        return 2 if failures else 0
    result = grounder.ground(GroundingRequest(image, refs, query_name=target.name))
    if args.json:
        print(json.dumps({"image": str(target), **result.to_dict()}, indent=2))
    else:
        _print_human(target.name, result)
    if args.overlay:
        from inspector_agent.overlay import render_overlay

        render_overlay(image, result).save(args.overlay)
    return 0
