"""Several reference draws in one report: each metric's median over the seeds."""

from __future__ import annotations

from typing import Any

import numpy as np


def _median(values: list[Any]) -> Any:
    if all(isinstance(v, dict) for v in values):
        return {key: _median([v[key] for v in values]) for key in values[0]}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return int(np.median(values))  # counts (images per defect type) are the same each draw
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.median(finite)) if finite else float("nan")


def median_report(reports: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One report for several seeds of the same evaluation.

    ``categories``, ``overall`` (the median over seeds of the category mean) and
    ``defect_types`` hold each metric's median over the seeds (NaN values left out);
    ``config`` lists the seeds; ``seeds`` keeps each seed's own ``categories`` and ``overall``.
    """
    first = next(iter(reports.values()))
    config = {k: v for k, v in first["config"].items() if k != "seed"}
    config["seeds"] = list(reports)
    runs = list(reports.values())
    out: dict[str, Any] = {
        "categories": _median([r["categories"] for r in runs]),
        "overall": _median([r["overall"] for r in runs]),
        "config": config,
    }
    if "defect_types" in first:
        out["defect_types"] = _median([r["defect_types"] for r in runs])
    out["seeds"] = {
        str(seed): {"categories": r["categories"], "overall": r["overall"]}
        for seed, r in reports.items()
    }
    return out
