"""Write synthetic anomalies as an MVTec-AD-layout folder, for ``inspector eval localization``.

``python -m training.export_mvtec OUT [--count N] [--size 112] [--kinds cell] [--seed 7]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from inspector_agent.atomic_files import check_output_folder
from inspector_agent.cli import at_least
from inspector_agent.errors import InspectorError
from training.synthetic import KINDS, LABELS, good_image, synthesize


def export_mvtec(
    out: Path,
    category: str,
    count: int,
    size: int,
    kinds: list[str],
    seed: int,
    shots: int = 4,
    jitter: float = 40.0,
) -> Path:
    """``shots`` references in ``train/good``; ``count`` test images, half good, half with masks."""
    rng = np.random.default_rng(seed)
    root = out / category
    (root / "train" / "good").mkdir(parents=True, exist_ok=True)
    for i in range(shots):
        good_image(size, rng, jitter).save(root / "train" / "good" / f"{i:03d}.png")
    for i in range(count):
        image = good_image(size, rng, jitter)
        if i % 2 == 0:
            folder = root / "test" / "good"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{i:03d}.png")
            continue
        kind = kinds[i % len(kinds)]
        defect = LABELS[kind]
        image, mask = synthesize(image, kind, rng)
        for sub in ("test", "ground_truth"):
            (root / sub / defect).mkdir(parents=True, exist_ok=True)
        image.save(root / "test" / defect / f"{i:03d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(
            root / "ground_truth" / defect / f"{i:03d}_mask.png"
        )
    return root


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m training.export_mvtec", description=__doc__)
    parser.add_argument("out", type=Path, help="folder to write (the category goes inside)")
    parser.add_argument("--category", default="synthetic", help="category folder name")
    parser.add_argument(
        "--count", type=at_least(1), default=50, help="test images (half anomalous)"
    )
    parser.add_argument("--size", type=at_least(28), default=112, help="image side in pixels")
    parser.add_argument(
        "--kinds", default="cell", help=f"comma-separated kinds ({', '.join(KINDS)})"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--jitter", type=float, default=40.0, help="base colour spread (tiny-cpu recipe: 10)"
    )
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        parser.error(f"unknown kinds {unknown} (known: {', '.join(KINDS)})")
    if args.jitter < 0:
        parser.error(f"--jitter must be 0 or more, got {args.jitter}")
    try:
        check_output_folder(args.out, "exported images")
    except InspectorError as exc:
        parser.error(str(exc))
    root = export_mvtec(
        args.out, args.category, args.count, args.size, kinds, args.seed, jitter=args.jitter
    )
    print(f"wrote {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
