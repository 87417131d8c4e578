"""Actions: the services around the training loop, one small object each.

`Controller` runs the epochs; after every loop of steps and every epoch it calls the
actions in order (Orbit's `actions/` in spirit). Each implements only the hooks it
needs; all read and update the shared `FitState`, which is what a checkpoint holds.

    on_epoch_begin(state)        before the first loop of an epoch
    on_loop_end(state)           after each `trainer.train(iterator, n)` call
    on_epoch_end(state, entry)   after validation; `state` already points at the next epoch
    on_fit_end(state)            after the last epoch (not after an error)
    close()                      always, last
"""

from weibo_lstm.training.actions.action import Action
from weibo_lstm.training.actions.early_stopping import EarlyStopping, epochs_without_improvement
from weibo_lstm.training.actions.keep_best_weights import KeepBestWeights, improves
from weibo_lstm.training.actions.progress_bar import ProgressBar
from weibo_lstm.training.actions.save_checkpoint_if_preempted import SaveCheckpointIfPreempted
from weibo_lstm.training.actions.save_checkpoints import SaveCheckpoints
from weibo_lstm.training.actions.still_improving import StillImproving
from weibo_lstm.training.actions.tensorboard_scalars import TensorBoardScalars

__all__ = [
    "Action",
    "EarlyStopping",
    "KeepBestWeights",
    "ProgressBar",
    "SaveCheckpointIfPreempted",
    "SaveCheckpoints",
    "StillImproving",
    "TensorBoardScalars",
    "epochs_without_improvement",
    "improves",
]
