"""Expert grounder latency against image size and number of references (banks cached).

Usage: python bench/bench_grounder.py [DATA_DIR/CATEGORY] [--shots 1,4,8,20] [--repeats 5]
Without a category folder, synthetic textured images are used at several sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from inspector_agent.cli import at_least, distinct_at_least
from inspector_agent.evaluation.mvtec import read_category
from inspector_agent.grounding.base import GroundingRequest, ReferenceSet
from inspector_agent.grounding.expert import ExpertGrounder
from inspector_agent.settings import Settings


def synthetic(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``n`` noisy stripe images of ``size`` (w, h) written to ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        x = np.arange(size[0])
        base = 120 + 40 * np.sin(x / 9.0)[None, :] + rng.normal(0, 6, (size[1], size[0]))
        path = folder / f"{i:03d}.png"
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).convert("RGB").save(path)
        out.append(path)
    return out


def time_queries(
    grounder: ExpertGrounder, refs: list[Path], queries: list[Path], repeats: int
) -> float:
    """Median per-image latency in ms once the reference bank is cached."""
    reference_set = ReferenceSet("bench", refs)
    grounder.memory_bank(refs)
    images = [Image.open(q).convert("RGB") for q in queries]
    grounder.ground(GroundingRequest(images[0], reference_set))  # warm-up
    times = []
    for _ in range(repeats):
        for image in images:
            start = time.perf_counter()
            grounder.ground(GroundingRequest(image, reference_set))
            times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> int:
    """Print a table of median latency per (image size, K)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("category", nargs="?", help="an MVTec-style category folder")
    parser.add_argument(
        "--shots",
        type=distinct_at_least(1),
        default=[1, 4, 8, 20],
        metavar="K[,K...]",
        help="numbers of references (default 1,4,8,20)",
    )
    parser.add_argument(
        "--repeats", type=at_least(1), default=3, help="timed queries per image (default 3)"
    )
    parser.add_argument("--threads", type=at_least(1), default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    shots = args.shots
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), torch_threads=args.threads)
        grounder = ExpertGrounder(settings)
        if args.category:
            try:
                category = read_category(Path(args.category))
            except FileNotFoundError as exc:  # the reader names what is missing
                print(f"error: {exc}", file=sys.stderr)
                return 2
            train, queries = category.train, [s.path for s in category.test][:4]
            cases = [(category.name, train[:k], queries) for k in shots if k <= len(train)]
        else:
            cases = []
            for size in [(256, 256), (800, 600), (1600, 800)]:
                folder = Path(tmp) / f"{size[0]}x{size[1]}"
                refs = synthetic(folder / "refs", max(shots), size)
                queries = synthetic(folder / "queries", 2, size, seed=1)
                cases += [(f"synthetic {size[0]}x{size[1]}", refs[:k], queries) for k in shots]
        print(f"{'images':>24} {'K':>4} {'mode':>8} {'bank':>6} {'median ms':>10}")
        for name, refs, queries in cases:
            ms = time_queries(grounder, refs, queries, args.repeats)
            bank = grounder.memory_bank(refs)
            size = bank.bank.shape[0] or int(
                np.prod(bank.grids.shape[::2][:1]) * np.prod(bank.grids.shape[-2:])
            )
            print(
                f"{name:>24} {len(refs):>4} {bank.calibration.mode:>8} {size:>6} {ms:>10.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
