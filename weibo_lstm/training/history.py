"""History: what `DistributedTrainer.fit` did, epoch by epoch, and the metrics it logs."""

from __future__ import annotations

import dataclasses
import logging
import math

logger = logging.getLogger("weibo_lstm")


@dataclasses.dataclass
class History:
    """What `fit` did.

    Attributes:
        epochs: one dict per epoch: `epoch` (1-based), train metrics (`loss`,
            `accuracy`, `precision`, `recall`), validation metrics (`val_` prefix),
            `learning_rate`, `epoch_time` (training, precise BatchNorm and
            validation), `examples_per_second` (training only), `skipped_steps`
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


def log_epoch(entry: dict, epochs: int) -> None:
    """One log line with an epoch's main metrics."""
    parts = [f"epoch {entry['epoch']}/{epochs}"]
    for key, value in entry.items():
        if key.startswith(("loss", "accuracy", "perplexity", "val_")) and key != "loss_scale":
            parts.append(f"{key} {value:.4f}")
    if "loss_scale" in entry:
        parts.append(f"loss scale {entry['loss_scale']:g}")
    parts.append(f"lr {entry['learning_rate']:.2e}")
    parts.append(f"{entry['examples_per_second']:.0f} ex/s")
    parts.append(f"{entry['epoch_time']:.1f}s")
    if entry.get("skipped_steps"):
        parts.append(f"{entry['skipped_steps']} non-finite steps skipped")
    logger.info(" - ".join(parts))
