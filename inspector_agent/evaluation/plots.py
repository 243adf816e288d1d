"""Evaluation plots (matplotlib, Agg): image-level ROC curves and a grid of example overlays."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from inspector_agent.evaluation.metrics import auroc, roc_curve

if TYPE_CHECKING:
    from inspector_agent.evaluation.localization import CategoryRun


def save_plots(runs: list[CategoryRun], out_dir: Path) -> list[Path]:
    """Write ``roc.png`` and ``examples_<category>.png`` under ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_roc(runs, out_dir / "roc.png")]
    for run in runs:
        if run.examples:
            written.append(_examples(run, out_dir / f"examples_{run.name}.png"))
    return written


def _roc(runs: list[CategoryRun], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for run in runs:
        if run.labels.all() or not run.labels.any():
            continue
        fpr, tpr = roc_curve(run.labels, run.scores)
        ax.plot(fpr, tpr, label=f"{run.name} (AUROC {auroc(run.labels, run.scores):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Image-level ROC")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _examples(run: CategoryRun, path: Path) -> Path:
    n = len(run.examples)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for row, ex in zip(axes, run.examples, strict=True):
        image, result, gt = np.asarray(ex["image"]), ex["result"], ex["gt"]
        row[0].imshow(image)
        row[0].set_title(f"{ex['path'].parent.name}/{ex['path'].name}", fontsize=8)
        row[1].imshow(image)
        if result.anomaly_map is not None:
            row[1].imshow(result.anomaly_map, cmap="jet", alpha=0.5)
        row[1].set_title(f"anomaly_map, score {result.pred_score:.3f}", fontsize=8)
        row[2].imshow(image)
        if gt.any():
            row[2].contour(gt, levels=[0.5], colors="lime", linewidths=1)
        # a passed part's regions are dashed: scored by the box metrics, not shown to the user
        line = "solid" if result.pred_label else "dashed"
        for d in result.defects:
            b = d.box
            row[2].add_patch(
                plt.Rectangle(
                    (b.x1, b.y1), b.width, b.height, fill=False, color="red", lw=1.5, ls=line
                )
            )
        if result.pred_mask is not None and result.pred_mask.any():
            row[2].contour(
                result.pred_mask, levels=[0.5], colors="red", linewidths=0.8, linestyles=line
            )
        verdict = result.verdict.value + ("" if result.pred_label else " (regions dashed)")
        row[2].set_title(f"truth (green) vs prediction (red): {verdict}", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
