"""SaveCheckpointIfPreempted: SIGTERM on any worker → every worker saves and stops."""

from __future__ import annotations

from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.errors import Preempted
from weibo_lstm.training.actions.action import Action
from weibo_lstm.training.actions.save_checkpoints import SaveCheckpoints
from weibo_lstm.training.checkpointing import FitState
from weibo_lstm.training.preemption import PreemptionWatcher


class SaveCheckpointIfPreempted(Action):
    """After a SIGTERM on any worker: every worker saves at the same step and raises `Preempted`.

    The workers agree with one all-reduce of the "stop requested" flag after every
    loop (nothing in one process), so they stop at the same step even when only one
    of them got the signal. Place it after `SaveCheckpoints`.
    """

    def __init__(
        self,
        watcher: PreemptionWatcher,
        runtime: Runtime,
        checkpoints: SaveCheckpoints | None,
        steps_per_epoch: int,
    ):
        self.watcher, self.runtime, self.checkpoints = watcher, runtime, checkpoints
        self.steps_per_epoch = steps_per_epoch

    def on_loop_end(self, state):
        self._stop_if_requested(state)

    def on_epoch_end(self, state, entry):
        self._stop_if_requested(state)

    def _stop_if_requested(self, state: FitState) -> None:
        if not self.runtime.any_worker(self.watcher.requested):
            return
        where = f"epoch {state.epoch}, step {state.step} of {self.steps_per_epoch}"
        what = "SIGTERM" if self.watcher.requested else "SIGTERM on another worker"
        if self.checkpoints is None:
            raise Preempted(
                f"{what}: stopped at {where}; nothing saved (no checkpoint directory: "
                "pass --checkpoint-dir / checkpoint_dir to resume after a preemption)"
            )
        path = self.checkpoints.save(state)
        raise Preempted(
            f"{what}: stopped at {where} and saved checkpoint {path}; run the same command "
            "again to resume",
            checkpoint=path,
        )
