"""History: what `DistributedTrainer.fit` did, epoch by epoch, and the metrics it logs."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

logger = logging.getLogger("weibo_lstm")

#: Per-step statistics, summed over replicas and steps: the metrics derive from them.
STATS = ("loss_sum", "count", "correct", "true_pos", "false_pos", "false_neg")


@dataclasses.dataclass
class History:
    """What `fit` did.

    Attributes:
        epochs: one dict per epoch: `epoch` (1-based), train metrics (`loss`,
            `accuracy`, `precision`, `recall`), validation metrics (`val_` prefix),
            `learning_rate`, `epoch_time`, `examples_per_second`, `skipped_steps`
            (non-finite steps skipped).
        best_epoch: 1-based epoch whose weights the model holds after `fit`.
        best_metrics: that epoch's entry of `epochs`.
        stopped_early: whether `patience` ended training.
        resumed_at_step: the global step a checkpoint was restored at (None: the
            run started from scratch). Epochs before it come from the checkpoint.
    """

    epochs: list[dict] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    best_metrics: dict | None = None
    stopped_early: bool = False
    resumed_at_step: int | None = None

    def series(self, key: str) -> list[float]:
        """One metric over epochs."""
        return [entry.get(key, math.nan) for entry in self.epochs]


def metrics_from_stats(stats: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Loss, accuracy, precision and recall (class 1) from summed statistics."""
    s = dict(zip(STATS, np.asarray(stats, np.float64), strict=True))
    count = max(s["count"], 1.0)
    predicted_pos = s["true_pos"] + s["false_pos"]
    actual_pos = s["true_pos"] + s["false_neg"]
    return {
        f"{prefix}loss": s["loss_sum"] / count,
        f"{prefix}accuracy": s["correct"] / count,
        f"{prefix}precision": s["true_pos"] / predicted_pos if predicted_pos else 0.0,
        f"{prefix}recall": s["true_pos"] / actual_pos if actual_pos else 0.0,
    }


def log_epoch(entry: dict, epochs: int) -> None:
    """One log line with an epoch's main metrics."""
    parts = [f"epoch {entry['epoch']}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_precision", "val_recall"):
        if key in entry:
            parts.append(f"{key} {entry[key]:.4f}")
    parts.append(f"lr {entry['learning_rate']:.2e}")
    parts.append(f"{entry['examples_per_second']:.0f} ex/s")
    parts.append(f"{entry['epoch_time']:.1f}s")
    if entry.get("skipped_steps"):
        parts.append(f"{entry['skipped_steps']} non-finite steps skipped")
    logger.info(" - ".join(parts))
