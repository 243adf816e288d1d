"""Knowledge-base benchmark: query latency at 1k/10k/100k chunks, ingestion throughput, image retrieval.

    python bench/bench_kb.py [--sizes 1000 10000 100000] [--realdata ../shared/realdata] [--json out.json]

Query latency includes embedding the question with the real MiniLM model; the store is filled
with synthetic chunks whose embeddings are real question-like vectors plus noise. With
``--realdata``, each MVTec-layout category there is imported as a product beside the demo
products and product suggestion from a photo is scored on every test image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inspector_agent.cli import at_least
from inspector_agent.imaging import load_image
from inspector_agent.kb import DEMO_PRODUCTS, KnowledgeBase
from inspector_agent.kb.embeddings import embed_texts
from inspector_agent.kb.importers import import_folders, mvtec_product_folder
from inspector_agent.settings import Settings
from knowledge.generate import write_testset

QUESTIONS = [
    "how long may a scratch be",
    "is a small hole acceptable",
    "what do we do with a stained part",
    "which lighting is used for inspection",
    "how much crazing is allowed on the glaze",
]
DOCS_PER_PRODUCT = 50


def timed(call: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median and p95 wall time of ``call`` in milliseconds (after one warm-up call)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95))}


def fill(kb: KnowledgeBase, start: int, stop: int, basis: np.ndarray) -> None:
    """Add synthetic chunks ``start..stop`` (10 products x 50 documents) and make them live."""
    rng = np.random.default_rng(start)
    for begin in range(start, stop, 2000):
        ids = list(range(begin, min(stop, begin + 2000)))
        vectors = basis[rng.integers(len(basis), size=len(ids))] + 0.35 * rng.standard_normal(
            (len(ids), basis.shape[1])
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        keys = [f"p{i % 10}:d{(i // 10) % DOCS_PER_PRODUCT}" for i in ids]
        kb.store.chunks.add(
            ids=[f"{k}:{i}" for k, i in zip(keys, ids, strict=True)],  # <doc_key>:<n>
            embeddings=vectors.astype(np.float32),
            documents=[
                f"synthetic passage {i} about surface defects and acceptance limits" for i in ids
            ],
            metadatas=[
                {"product_id": k.split(":")[0], "doc_key": k, "source": "syn.md", "section": "s"}
                for k in keys
            ],
        )
    for p in range(10):
        kb.store.products.upsert(
            ids=[f"p{p}"],
            embeddings=basis[:1],
            metadatas=[
                {
                    "name": f"P{p}",
                    "version": "v",
                    "doc_keys": json.dumps([f"p{p}:d{d}" for d in range(DOCS_PER_PRODUCT)]),
                    "image_keys": "[]",
                    "references": "[]",
                    "calibration": "null",
                    "manifest": json.dumps(
                        {"id": f"p{p}", "name": f"P{p}", "description": "x", "defects": []}
                    ),
                }
            ],
        )


def bench_queries(sizes: list[int], repeats: int) -> dict[str, dict[str, float]]:
    """Search latency (question embedding included), over all products and within one."""
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        kb = KnowledgeBase(Settings(data_dir=Path(scratch)))
        kb.store.begin_write()
        basis = embed_texts(
            [f"{q} {w}" for q in QUESTIONS for w in ("panel", "fabric", "tile", "rule")]
        )
        have = 0
        for size in sizes:
            start = time.perf_counter()
            fill(kb, have, size, basis)
            fill_s = time.perf_counter() - start
            have = size
            questions = iter(QUESTIONS * (repeats + 2))
            every = timed(lambda q=questions: kb.search(next(q), k=5), repeats)
            one = timed(lambda q=questions: kb.search(next(q), product_id="p3", k=5), repeats)
            results[str(size)] = (
                {"all_" + k: v for k, v in every.items()}
                | {"product_" + k: v for k, v in one.items()}
                | {"fill_s": fill_s}
            )
            print(
                f"{size:>7} chunks: all {every['median_ms']:.1f}/{every['p95_ms']:.1f} ms, "
                f"one product {one['median_ms']:.1f}/{one['p95_ms']:.1f} ms (median/p95)",
                flush=True,
            )
        kb.close()
    return results


def bench_ingestion(kb: KnowledgeBase, scratch: Path) -> dict[str, float]:
    """Chunks per second of a real ingestion (chunking + MiniLM embedding + Chroma writes)."""
    folder = scratch / "ingest-bench"
    (folder / "references").mkdir(parents=True)
    (folder / "manifest.yaml").write_text("name: Ingest bench\ndescription: Many spec sections.\n")
    specs = "\n".join(p.read_text() for p in sorted(DEMO_PRODUCTS.glob("*/spec.md")))
    (folder / "spec.md").write_text("\n".join(f"# Revision {r}\n{specs}" for r in range(10)))
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(stage + "_start", time.perf_counter())
        marks[stage + "_end"] = time.perf_counter()

    start = time.perf_counter()
    report = kb.add_product(folder, progress=progress)
    total_s = time.perf_counter() - start
    chunk_s = marks["chunks_end"] - start
    out = {
        "chunks": report.chunks_added,
        "seconds": chunk_s,
        "chunks_per_s": report.chunks_added / chunk_s,
        "total_s": total_s,
    }
    print(
        f"ingestion: {report.chunks_added} chunks in {chunk_s:.1f} s = {out['chunks_per_s']:.0f} chunks/s",
        flush=True,
    )
    return out


def bench_images(
    kb: KnowledgeBase, scratch: Path, realdata: Path | None, repeats: int
) -> dict[str, object]:
    """Reference retrieval latency and product-suggestion accuracy (demo test set, real data)."""
    testset = scratch / "testset"
    write_testset(testset, good=4, per_defect=4)
    demo_images = sorted(testset.glob("*/test/*/*.png"))
    query = load_image(demo_images[0])
    latency = {
        "closest_references": timed(
            lambda: kb.closest_references(query, "brushed-alu-panel", 4), repeats
        ),
        "suggest_product": timed(lambda: kb.suggest_product(query), repeats),
    }
    print(
        f"image retrieval: closest {latency['closest_references']['median_ms']:.0f}/{latency['closest_references']['p95_ms']:.0f} ms, "
        f"suggest {latency['suggest_product']['median_ms']:.0f}/{latency['suggest_product']['p95_ms']:.0f} ms",
        flush=True,
    )
    cases = [(p, p.parts[-4]) for p in demo_images]
    strangers: list[bool] = []  # real photos taken for a demo product before theirs is known
    if realdata is not None:
        categories = sorted(p for p in realdata.iterdir() if (p / "train" / "good").is_dir())
        for category in categories:
            for path in sorted((category / "test").glob("*/*"))[::3]:
                pid, score = kb.suggest_product(load_image(path), k=1)[0]
                strangers.append(score >= kb.recognition_floor(pid))
        for category in categories:
            pid = category.name.replace("_", "-")
            import_folders(
                lambda out, c=category, i=pid: [mvtec_product_folder(c, i, out)], kb.add_product
            )
            cases += [(p, pid) for p in sorted((category / "test").glob("*/*")) if p.is_file()]
    scores: dict[str, list[bool]] = {}
    recognised: list[bool] = []
    for path, expected in cases:
        pid, score = kb.suggest_product(load_image(path), k=1)[0]
        scores.setdefault(expected, []).append(pid == expected)
        recognised.append(pid == expected and score >= kb.recognition_floor(pid))
    accuracy = {k: sum(v) / len(v) for k, v in scores.items()}
    demo = [ok for k, v in scores.items() if (DEMO_PRODUCTS / k).is_dir() for ok in v]
    real = [ok for k, v in scores.items() if not (DEMO_PRODUCTS / k).is_dir() for ok in v]
    summary = {
        "demo": sum(demo) / len(demo),
        "realdata": sum(real) / len(real) if real else None,
        "recognised": sum(recognised) / len(recognised),
        "strangers_taken": sum(strangers) / len(strangers) if strangers else None,
    }
    real_text = f"{summary['realdata']:.3f}" if real else "n/a"
    per_product = ", ".join(f"{k} {v:.2f}" for k, v in sorted(accuracy.items()))
    print(
        f"suggestion top-1: demo {summary['demo']:.3f} ({len(demo)} images), "
        f"realdata {real_text} ({len(real)} images); {per_product}",
        flush=True,
    )
    print(
        f"recognised (right product, above its floor): {sum(recognised)}/{len(recognised)}; "
        f"real photos taken for a demo product before theirs was known: "
        f"{sum(strangers)}/{len(strangers)}",
        flush=True,
    )
    return {"latency": latency, "suggestion": summary, "per_product": accuracy}


def main() -> int:
    """Run every benchmark and print (and optionally save) the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=at_least(1),
        nargs="+",
        default=[1000, 10_000, 100_000],
        help="store sizes in chunks (default 1000 10000 100000)",
    )
    parser.add_argument(
        "--repeats", type=at_least(1), default=50, help="queries timed per size (default 50)"
    )
    parser.add_argument(
        "--realdata", type=Path, help="MVTec-layout categories (e.g. ../shared/realdata)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, object] = {"queries": bench_queries(sorted(args.sizes), args.repeats)}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        kb = KnowledgeBase(Settings(data_dir=scratch / "data"))
        for folder in sorted(DEMO_PRODUCTS.iterdir()):
            kb.add_product(folder)
        results["ingestion"] = bench_ingestion(kb, scratch)
        results["images"] = bench_images(kb, scratch, args.realdata, min(args.repeats, 20))
        kb.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
