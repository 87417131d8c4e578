"""Mixed precision: the `--mixed-precision` modes, their dtype policies and loss scaling.

A mode becomes a *per-model* Keras dtype policy (`dtype_policy`), given to the
backbone when it is created; the process-wide `keras.config.set_dtype_policy` is
never touched, so a notebook that trains one model in mixed precision does not
change the next model it builds. Under `"mixed_float16"` and `"mixed_bfloat16"`
the layers compute in half precision and keep float32 variables; `WeiboLSTM`'s
softmax stays float32.

float16 has 5 exponent bits: small gradients underflow to zero unless the loss
is scaled up first. `DistributedTrainer` therefore wraps the optimizer of a
`"mixed_float16"` model in `keras.optimizers.LossScaleOptimizer` (as Keras's own
`Model.compile` does): the replica step multiplies the loss by the scale, the
optimizer divides the gradients by it, and a step whose scaled gradients overflow
is skipped while the scale is halved (it doubles again after 2000 good steps).
bfloat16 has float32's exponent range and needs no loss scaling.

Example:

>>> dtype_policy("bfloat16").name, dtype_policy("off")
('mixed_bfloat16', None)
>>> with tf.distribute.get_strategy().scope():
...     optimizer = loss_scale_optimizer(keras.optimizers.Adam())
>>> optimizer.build([keras.Variable(1.0)])
>>> learned = learned_variables(optimizer)  # Adam's iterations, rate and moments
>>> float(optimizer.dynamic_scale.numpy()), any(v is optimizer.dynamic_scale for v in learned)
(32768.0, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from weibo_lstm.training.options import MIXED_PRECISION_MODES

#: The values of `--mixed-precision` / `mixed_precision=`.
MODES = MIXED_PRECISION_MODES


def dtype_policy(mode: str) -> keras.DTypePolicy | None:
    """The Keras dtype policy of a mixed-precision `mode` (None for `"off"`).

    Pass it as a model's `dtype=` argument (e.g. `WeiboLSTM(..., dtype=policy)`).

    Raises:
        ValueError: for a mode not in `MODES`.
    """
    if mode not in MODES:
        raise ValueError(
            f"Argument `mixed_precision` must be one of {MODES}. Received: mixed_precision={mode!r}"
        )
    return None if mode == "off" else keras.DTypePolicy(f"mixed_{mode}")


#: The lowest CUDA compute capability with bfloat16 tensor cores (Ampere, e.g. A100).
BFLOAT16_COMPUTE_CAPABILITY = (8, 0)


def supports_bfloat16(device_details: Mapping) -> bool:
    """Whether a GPU computes in bfloat16 natively, from its details.

    Args:
        device_details: `tf.config.experimental.get_device_details(gpu)`: on CUDA
            builds `{"device_name": ..., "compute_capability": (major, minor)}`.
            Without a compute capability (another platform): False.

    Example:

    >>> supports_bfloat16({"compute_capability": (9, 0)}), supports_bfloat16({})
    (True, False)
    """
    capability = device_details.get("compute_capability")
    return capability is not None and tuple(capability) >= BFLOAT16_COMPUTE_CAPABILITY


def choose_mode(gpu_details: Sequence[Mapping]) -> str:
    """`"bfloat16"` if there are GPUs and every one supports it, else `"off"`.

    Older GPUs (Volta, Turing: compute capability 7.x) and CPUs emulate bfloat16
    and run slower than in float32; one such GPU among the replicas would pace every
    step, so all of them must support it.

    Args:
        gpu_details: the details of each GPU (`supports_bfloat16`); empty on a CPU.

    Example:

    >>> choose_mode([{"compute_capability": (8, 0)}, {"compute_capability": (8, 9)}])
    'bfloat16'
    >>> choose_mode([{"compute_capability": (8, 0)}, {"compute_capability": (7, 5)}])
    'off'
    """
    if gpu_details and all(supports_bfloat16(d) for d in gpu_details):
        return "bfloat16"
    return "off"


def resolve_mode(mode: str, device_kind: str) -> str:
    """`mode`, with `"auto"` replaced by `choose_mode` of this machine's GPUs.

    Args:
        mode: `"auto"` or one of `MODES` (returned as it is).
        device_kind: the strategy's (`weibo_lstm.distribute.devices.device_kind`):
            on `"CPU"`, `"auto"` is `"off"` even if the machine has GPUs.
    """
    if mode != "auto":
        return mode
    if device_kind != "GPU":
        return "off"
    gpus = tf.config.list_physical_devices("GPU")
    return choose_mode([tf.config.experimental.get_device_details(g) for g in gpus])


def needs_loss_scaling(model: keras.Model) -> bool:
    """Whether `model` computes in float16 (its dtype policy is `"mixed_float16"`)."""
    return model.dtype_policy.name == "mixed_float16"


def loss_scale_optimizer(
    optimizer: keras.optimizers.Optimizer,
) -> keras.optimizers.LossScaleOptimizer:
    """`optimizer` wrapped in a dynamic `LossScaleOptimizer` (itself if it is one).

    Create it under the trainer's `strategy.scope()`, like any optimizer.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def learned_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The optimizer variables a training step learns: all but the loss scaler's.

    For a `LossScaleOptimizer` these are its inner optimizer's (iterations, moments);
    the loss scale and its step counter are left out, so that undoing a step keeps
    the scale's adjustment.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return list(optimizer.inner_optimizer.variables)
    return list(optimizer.variables)


def agree_on_overflow(gradients: list[tf.Tensor]) -> list[tf.Tensor]:
    """In a replica context: `gradients`, made non-finite if any replica's are.

    `LossScaleOptimizer` decides between applying and skipping a step from the
    first local replica's gradients before they are all-reduced. When another
    replica (or worker) overflowed alone, the summed gradients would be non-finite
    yet applied. Agreeing first costs one scalar all-reduce per step.
    """
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
    context = tf.distribute.get_replica_context()
    overflows = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(~finite, tf.float32))
    all_finite = overflows == 0
    # One non-finite gradient is enough for the optimizer's check on every replica.
    first = tf.where(all_finite, gradients[0], tf.constant(float("inf"), gradients[0].dtype))
    return [first, *gradients[1:]]
