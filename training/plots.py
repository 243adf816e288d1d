"""Plot every reward (and the SFT loss) over steps from ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_rewards(metrics_path: Path, out_path: Path) -> Path:
    """One panel for the SFT loss, one line per GRPO reward mean; returns ``out_path``."""
    records = [
        json.loads(line) for line in metrics_path.read_text("utf-8").splitlines() if line.strip()
    ]
    sft = [(r["step"], r["loss"]) for r in records if r.get("stage") == "sft"]
    grpo = [r for r in records if r.get("stage") == "grpo"]
    keys = sorted({k for r in grpo for k in r if k.startswith("rewards/") and k.endswith("/mean")})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if sft:
        left.plot(*zip(*sft, strict=True), label="SFT loss")
    left.set(title="SFT warm start", xlabel="step", ylabel="loss")
    for key in [*keys, "reward", "difficulty/weight_mean"]:
        points = [(r["step"], r[key]) for r in grpo if key in r]
        if points:
            right.plot(
                *zip(*points, strict=True), label=key.removeprefix("rewards/").removesuffix("/mean")
            )
    right.set(title="GRPO rewards", xlabel="step", ylabel="mean")
    for axis in (left, right):
        if axis.has_data():
            axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
