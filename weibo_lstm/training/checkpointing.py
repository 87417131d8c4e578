"""TrainingCheckpoint: the resumable state of a `DistributedTrainer.fit` run on disk.

One `tf.train.Checkpoint`, written by a `tf.train.CheckpointManager` (which keeps
the last `max_to_keep` and replaces its index file atomically, so a kill during a
save leaves the previous checkpoint intact), holds:

* every model variable, by position in `model.variables`: weights, BatchNorm
  statistics and the `SeedGenerator` states of the dropout layers (Keras 3 keeps
  those outside `model.weights`; saving them makes dropout masks continue exactly);
* every optimizer variable, by position (`iterations`, Adam's moments);
* the best epoch's weights (by position in `model.weights`);
* `epoch` and `step` counters, and a JSON record of the rest of the host state
  (history, best metric, patience, the current epoch's summed statistics, ...).

The model and optimizer are listed by position rather than checkpointed as objects:
`tf.train.Checkpoint(model=model)` follows only trackable attributes, and misses
layers that Keras 3 keeps in Python lists (WeiboLSTM's LSTMs and their BatchNorm
statistics) and every `SeedGenerator` state.

In a multi-worker run every worker saves (a save may need collectives) but only the
chief writes to `directory`; the others write to a private temporary directory that
is deleted after each save (the tf.distribute write-path pattern). All workers
restore from `directory`, which must therefore be on storage they share.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.errors import CheckpointError
from weibo_lstm.training.history import History

logger = logging.getLogger("weibo_lstm")

_PREFIX = "ckpt"


class TrainingCheckpoint:
    """Saves and restores model, optimizer, best weights and host state.

    Args:
        directory: where checkpoints live (`ckpt-<global step>.*` files and the
            `checkpoint` index).
        model: a built Keras model.
        optimizer: a built Keras optimizer (its slot variables must exist, so that
            restoring fills them rather than being deferred).
        max_to_keep: how many recent checkpoints to keep.
        runtime: this process's place in the cluster (`runtime.Runtime`; None: one
            process). A non-chief worker writes `runtime.write_dir(directory)`
            and deletes it after each save.

    Example:

    >>> import pathlib, tempfile
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> optimizer = keras.optimizers.Adam()
    >>> optimizer.build(model.trainable_variables)
    >>> checkpoint = TrainingCheckpoint(tempfile.mkdtemp(), model=model, optimizer=optimizer)
    >>> checkpoint.save(7, {"epoch": 2, "step": 3})
    >>> checkpoint.restore()["step"], pathlib.Path(checkpoint.latest).name
    (3, 'ckpt-7')
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        max_to_keep: int = 3,
        runtime: Runtime | None = None,
    ):
        self.directory = str(directory)
        runtime = runtime or Runtime()
        self.is_chief = runtime.is_chief
        self._best_source = None
        with tf.device("/cpu:0"):
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._host_state = tf.Variable("", dtype=tf.string, trainable=False)
            self._best = [
                tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False) for w in model.weights
            ]
        self._checkpoint = tf.train.Checkpoint(
            model=list(model.variables),
            optimizer=list(optimizer.variables),
            best_weights=self._best,
            epoch=self._epoch,
            step=self._step,
            host_state=self._host_state,
        )
        self._write_dir = runtime.write_dir(self.directory)
        self._max_to_keep = max_to_keep
        self._manager = self._new_manager()

    @property
    def latest(self) -> str | None:
        """Path prefix of the newest checkpoint in `directory`, or None."""
        return tf.train.latest_checkpoint(self.directory)

    def restore(self) -> dict | None:
        """Restores the newest readable checkpoint into the variables.

        A checkpoint whose files are missing or unreadable (a damaged disk, files
        deleted by hand) is skipped with a warning for the one before it.

        Returns:
            The host state given to `save` (with `epoch` and `step` from their
            variables, and its `path`), or None when `directory` holds no checkpoint.

        Raises:
            CheckpointError: if the checkpoint does not match the model or optimizer,
                or none of the listed checkpoints can be read.
        """
        index = tf.train.get_checkpoint_state(self.directory)
        if index is None or not index.model_checkpoint_path:
            return None
        paths = list(index.all_model_checkpoint_paths) or [index.model_checkpoint_path]
        for path in reversed(paths):
            path = path if os.path.isabs(path) else os.path.join(self.directory, path)
            try:
                self._checkpoint.restore(path).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
                # Objects missing, or a shape or dtype that differs at some position.
                raise CheckpointError(
                    f"{path}: the checkpoint does not match this model and optimizer "
                    f"({_first_line(e)}); was it written with other model settings or data? "
                    "Use another checkpoint directory, or start fresh (--fresh / fresh=True)"
                ) from None
            # A truncated file surfaces as IndexError ("Read less bytes than requested").
            except (tf.errors.OpError, OSError, IndexError) as e:
                logger.warning("Cannot read checkpoint %s (%s)", path, _first_line(e))
                continue
            state = json.loads(self._host_state.numpy().decode("utf-8"))
            state.update(epoch=int(self._epoch.numpy()), step=int(self._step.numpy()))
            state["path"] = path
            return state
        raise CheckpointError(
            f"{self.directory}: none of its {len(paths)} checkpoint(s) can be read; move them "
            "away or start fresh (--fresh / fresh=True)"
        )

    def best_weights(self) -> list[np.ndarray]:
        """The best-weights slots as restored (meaningful when the state has a best)."""
        return [v.numpy() for v in self._best]

    def save(
        self, global_step: int, state: dict, best_weights: list[np.ndarray] | None = None
    ) -> None:
        """Writes a checkpoint numbered `global_step`.

        Args:
            global_step: optimizer steps done; names the files (`ckpt-<step>`).
            state: JSON-serialisable host state; its `epoch` and `step` entries go to
                the counter variables.
            best_weights: the best weights (copied only when this list object is not
                the one saved last time).

        Raises:
            CheckpointError: if writing fails (disk full, permissions); the previous
                checkpoint stays intact.
        """
        if best_weights is not None and best_weights is not self._best_source:
            for variable, value in zip(self._best, best_weights, strict=True):
                variable.assign(value)
            self._best_source = best_weights
        self._epoch.assign(int(state.get("epoch", 0)))
        self._step.assign(int(state.get("step", 0)))
        self._host_state.assign(json.dumps(state, default=_json_default))
        try:
            self._manager.save(checkpoint_number=global_step)
        except (OSError, tf.errors.OpError) as e:
            raise CheckpointError(
                f"{self._write_dir}: could not write a checkpoint: {_first_line(e)}; "
                f"the previous one ({self.latest or 'none'}) is intact"
            ) from None
        finally:
            if not self.is_chief:
                shutil.rmtree(self._write_dir, ignore_errors=True)

    def clear(self) -> int:
        """Deletes this manager's checkpoints and index in `directory`; returns how many."""
        state = tf.train.get_checkpoint_state(self.directory)
        paths = list(state.all_model_checkpoint_paths) if state else []
        if self.is_chief:
            for path in paths:
                for file in tf.io.gfile.glob(f"{path}.*"):
                    tf.io.gfile.remove(file)
            index = os.path.join(self.directory, "checkpoint")
            if tf.io.gfile.exists(index):
                tf.io.gfile.remove(index)
        self._manager = self._new_manager()  # the old one still lists the deleted files
        return len(paths)

    def _new_manager(self) -> tf.train.CheckpointManager:
        return tf.train.CheckpointManager(
            self._checkpoint,
            self._write_dir,
            max_to_keep=self._max_to_keep,
            checkpoint_name=_PREFIX,
        )


@dataclasses.dataclass
class FitState:
    """Where `fit` is: what a checkpoint holds besides the variables.

    Attributes:
        epoch: the epoch being trained (1-based); `epochs + 1` when done.
        step: its steps done.
        train_stats: its summed statistics so far (the objective's `stat_names`;
            empty before the first step).
        skipped_steps: its non-finite steps skipped.
        epoch_time: its seconds so far, across restarts.
        history: the finished epochs.
        best_value: the best monitored value so far.
        best_weights: the weights of that epoch (not in the JSON).
        signature: what must match to resume (data size, global batch, seed, ...).

    Example:

    >>> state = FitState()
    >>> state.history.epochs = [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]
    >>> state.history.best_epoch = 1
    >>> state.waited, list(state.to_json())[-3:]
    (2, ['waited', 'signature', 'has_best'])
    """

    epoch: int = 1
    step: int = 0
    train_stats: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    skipped_steps: int = 0
    epoch_time: float = 0.0
    history: History = dataclasses.field(default_factory=History)
    best_value: float | None = None
    best_weights: list[np.ndarray] | None = None
    signature: dict = dataclasses.field(default_factory=dict)

    @property
    def waited(self) -> int:
        """Finished epochs since the best one (all of them before a first best).

        Derived from the history, and written to checkpoints only so that they keep
        the host state they have always had (`EarlyStopping` counts from the history
        itself; a resumed run ignores this entry).
        """
        return len(self.history.epochs) - (self.history.best_epoch or 0)

    def global_step(self, steps_per_epoch: int) -> int:
        """Optimizer steps done in the whole run."""
        return (self.epoch - 1) * steps_per_epoch + self.step

    def next_epoch(self) -> None:
        self.epoch += 1
        self.step = self.skipped_steps = 0
        self.epoch_time = 0.0
        self.train_stats = np.zeros(0)

    def to_json(self) -> dict:
        fields = {}
        for field in dataclasses.fields(self):
            if field.name == "signature":
                fields["waited"] = self.waited  # where checkpoints have always had it
            if field.name != "best_weights":
                fields[field.name] = getattr(self, field.name)
        fields["history"] = dataclasses.asdict(self.history)
        fields["train_stats"] = [float(x) for x in self.train_stats]
        fields["has_best"] = self.best_weights is not None
        return fields

    @classmethod
    def from_json(cls, saved: dict, best_weights: list[np.ndarray]) -> FitState:
        names = {f.name for f in dataclasses.fields(cls)} - {"best_weights"}
        state = cls(**{k: v for k, v in saved.items() if k in names})
        state.train_stats = np.asarray(state.train_stats, np.float64)
        state.history = History(**state.history)
        state.best_weights = best_weights if saved.get("has_best") else None
        return state


def restore_fit_state(
    checkpoint: TrainingCheckpoint,
    *,
    signature: dict,
    epochs: int,
    steps_per_epoch: int,
    resume: bool = True,
) -> FitState | None:
    """The state to continue from, restored into the variables, and logged.

    Returns:
        None (train from scratch) when there is no checkpoint, or when `resume` is
        False (the old checkpoints are then deleted).

    Raises:
        CheckpointError: if the checkpoint belongs to another run (`signature`
            differs) or does not fit the model and optimizer.
    """
    if not resume:
        removed = checkpoint.clear()
        if removed:
            logger.info(
                "Starting fresh: deleted %d checkpoint(s) in %s", removed, checkpoint.directory
            )
        return None
    saved = checkpoint.restore()
    if saved is None:
        logger.info("No checkpoint in %s: training from scratch", checkpoint.directory)
        return None
    old = saved.get("signature") or {}
    if old != signature:
        differences = ", ".join(
            _difference(key, old.get(key), value)
            for key, value in signature.items()
            if old.get(key) != value
        )
        raise CheckpointError(
            f"{saved['path']} belongs to another run ({differences}); use the same data, "
            "--seed, --batch-size and --replicas, another checkpoint directory, or start "
            "fresh (--fresh / fresh=True)"
        )
    state = FitState.from_json(saved, checkpoint.best_weights())
    state.history.resumed_at_step = state.global_step(steps_per_epoch)
    if state.epoch > epochs or state.history.stopped_early:
        logger.info(
            "Checkpoint %s holds a finished run (%d epochs): nothing left to train",
            saved["path"],
            len(state.history.epochs),
        )
    else:
        logger.info(
            "Resuming from checkpoint %s: epoch %d, step %d of %d (global step %d)",
            saved["path"],
            state.epoch,
            state.step,
            steps_per_epoch,
            state.global_step(steps_per_epoch),
        )
    if saved.get("epochs") != epochs:
        logger.warning(
            "The checkpoint was written for %s epochs, this run has %d: the learning-rate "
            "schedule changes from here on",
            saved.get("epochs"),
            epochs,
        )
    return state


def _difference(key: str, saved, now) -> str:
    if key == "variables":
        return f"the model's variables differ ({len(saved or [])} saved, {len(now)} now)"
    return f"{key} {saved} (now {now})"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
