"""Layer 5, training: the custom distributed training loop.

`trainer.DistributedTrainer` (the runner: replica steps under `strategy.run`, step
loops inside one `tf.function`, with its `options.TrainerOptions`; its exact
evaluation and prediction are `evaluator.DistributedEvaluator`'s),
`controller.Controller` (the outer loop: epochs, validation, the non-finite policy and
`actions` around the loop, with its `controller_options.ControllerOptions`),
`option_groups` (flat options to the two groups), objectives, optimization and
schedules, the input pipeline (length buckets, sharding), mixed precision, precise
BatchNorm, checkpoints and the history.
"""
