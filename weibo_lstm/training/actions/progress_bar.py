"""ProgressBar: a tqdm bar per epoch on a terminal."""

from __future__ import annotations

import sys

from weibo_lstm.training.actions.action import Action


class ProgressBar(Action):
    """A tqdm bar per epoch with the first two train metrics and examples/s (on a terminal).

    Args:
        trainer: the runner (its `train_loop_end()` metrics are shown).
        steps_per_epoch: the bar's length.
        epochs: for the bar's label.
    """

    def __init__(self, trainer, steps_per_epoch: int, epochs: int):
        self.trainer, self.steps_per_epoch, self.epochs = trainer, steps_per_epoch, epochs
        self.bar = None

    def on_epoch_begin(self, state):
        if not sys.stderr.isatty():
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.steps_per_epoch,
            initial=state.step,
            desc=f"epoch {state.epoch}/{self.epochs}",
            unit="step",
            leave=False,
        )
        self.shown = state.step

    def on_loop_end(self, state):
        if self.bar is None:
            return
        self.bar.update(state.step - self.shown)
        self.shown = state.step
        logs = dict(list(self.trainer.train_loop_end().items())[:2])
        speed = state.step * self.trainer.global_batch_size / max(state.epoch_time, 1e-9)
        self.bar.set_postfix(**{k: f"{v:.4f}" for k, v in logs.items()}, ex_s=f"{speed:.0f}")

    def on_epoch_end(self, state, entry):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
