"""Layer 5, training: the custom distributed training loop.

`trainer.DistributedTrainer` (replica steps under `strategy.run`, step loops inside
one `tf.function`), `controller.Controller` (epochs, validation, actions around the
loop), `actions` (best weights, early stopping, checkpoints, preemption, TensorBoard,
progress), `options.TrainerOptions`, objectives, optimization and schedules, the input
pipeline (length buckets, sharding), mixed precision, precise BatchNorm, checkpoints
and the history.
"""
