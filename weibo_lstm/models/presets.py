"""Presets as data: each names a `WeiboLSTM` architecture and its training budgets.

A preset is what the command line's `--preset` and `SentimentClassifier.from_preset`
name: the backbone's keyword arguments, plus a training budget (epochs, per-replica
batch, base learning rate before √replica scaling, warmup epochs) for each kind of
device. The budget fills only the options a user does not set. "seed" is the recipe's
architecture (WeiboLSTM's defaults; on GPUs the recipe's schedule, on a CPU the quick
budget it was measured with here); "seed-large-batch" the same architecture at a global
batch of 2,048 in length buckets, bfloat16 on GPUs that support it (issue 25); "best" is what the accuracy search kept
(benchmarks/README.md): no BatchNorm, masked mean+max pooling, character-bigram
embeddings, token dropout.

This module does not import TensorFlow.

Example:

>>> get_preset("best").budget("CPU").epochs
6
>>> sorted(PRESETS), DEFAULT_PRESET["CPU"]
(['best', 'pretrained', 'seed', 'seed-large-batch'], 'pretrained')
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from pathlib import Path

from weibo_lstm.distribute.device_probe import probable_device_kind
from weibo_lstm.errors import ConfigError

#: Device kinds a budget is given for (see `weibo_lstm.distribute.devices.local_device_kind`).
DEVICE_KINDS = ("CPU", "GPU")


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long and how fast to train; the `TrainerOptions` fields of the same names.

    Attributes:
        epochs: passes over the training set; with `patience`, a cap.
        batch_size: examples per replica per step (None: `global_batch_size` is set).
        learning_rate: peak rate for one replica, before `lr_scaling` (with
            `global_batch_size`: the peak rate, whatever the replicas).
        warmup_epochs: linear warmup length, then cosine decay.
        patience: stop after this many epochs without a better validation score
            (None: run every epoch).
        global_batch_size: examples per step across all replicas, instead of
            `batch_size` per replica: the same batches and rate on 1 or 8 GPUs.
        precise_bn_batches: training batches that recompute the BatchNorm
            statistics after each epoch (`weibo_lstm.training.precise_bn`); a
            large-batch budget needs fewer of its large batches.
        batch_renormalization: BatchNorm on length buckets normalises with the
            moving statistics in training (small batches); False: with each batch's
            own (large batches).
    """

    epochs: int
    batch_size: int | None
    learning_rate: float
    warmup_epochs: float
    patience: int | None = None
    global_batch_size: int | None = None
    precise_bn_batches: int = 50
    batch_renormalization: bool = True

    def __post_init__(self):
        if (self.batch_size is None) == (self.global_batch_size is None):
            raise ConfigError(
                "Give exactly one of `batch_size` and `global_batch_size`. Received: "
                f"batch_size={self.batch_size}, global_batch_size={self.global_batch_size}"
            )
        if self.precise_bn_batches < 0:
            raise ConfigError(
                "Argument `precise_bn_batches` must be >= 0. "
                f"Received: precise_bn_batches={self.precise_bn_batches}"
            )
        for name in ("epochs", "batch_size", "global_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"Argument `{name}` must be >= 1. Received: {name}={value}")
        if not self.learning_rate > 0:
            raise ConfigError(
                f"Argument `learning_rate` must be > 0. Received: learning_rate={self.learning_rate}"
            )
        if self.patience is not None and self.patience < 1:
            raise ConfigError(
                f"Argument `patience` must be >= 1 or None. Received: patience={self.patience}"
            )
        if not self.warmup_epochs >= 0:
            raise ConfigError(
                f"Argument `warmup_epochs` must be >= 0. Received: warmup_epochs={self.warmup_epochs}"
            )

    def as_dict(self) -> dict:
        """The budget as `TrainerOptions` keyword arguments (without the unset one of
        `batch_size` and `global_batch_size`)."""
        fields = dataclasses.asdict(self)
        unset = "batch_size" if self.batch_size is None else "global_batch_size"
        return {k: v for k, v in fields.items() if k != unset}


#: The budget fields, i.e. the training options whose default depends on the preset
#: and the device.
BUDGET_KEYS = tuple(f.name for f in dataclasses.fields(Budget))


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named architecture with its training budgets.

    Attributes:
        name: what `--preset` and `from_preset` call it.
        description: one line for `--help` and logs.
        backbone: keyword arguments of `WeiboLSTM` (besides `vocabulary_size`); with
            an `encoder`, the head's only (the encoder fixes the rest).
        budgets: the training budget by device kind (`"CPU"`, `"GPU"`).
        encoder: a pretrained encoder to start from (`weibo-lstm pretrain` output):
            a directory name under `weibo_lstm/assets/` (shipped package data) or a
            path. Its tokenizer (vocabulary) and architecture come with it.
        mixed_precision: the mode `SentimentClassifier.from_preset` uses when given
            none: `"off"`, `"float16"`, `"bfloat16"`, or `"auto"` (bfloat16 when every
            GPU of the strategy supports it, else off:
            `weibo_lstm.training.mixed_precision.choose_mode`).
    """

    name: str
    description: str
    backbone: Mapping[str, object]
    budgets: Mapping[str, Budget]
    encoder: str | None = None
    mixed_precision: str = "off"

    def __post_init__(self):
        missing = set(DEVICE_KINDS) - set(self.budgets)
        if missing:
            raise ConfigError(
                f"Argument `budgets` must have a budget for {sorted(missing)}. "
                f"Received: budgets={dict(self.budgets)}"
            )
        # Presets are shared module-level data: make them read-only.
        object.__setattr__(self, "backbone", types.MappingProxyType(dict(self.backbone)))
        object.__setattr__(self, "budgets", types.MappingProxyType(dict(self.budgets)))

    def budget(self, device_kind: str) -> Budget:
        """The budget for `device_kind` (`"CPU"` or `"GPU"`)."""
        if device_kind not in self.budgets:
            raise ConfigError(
                f"Argument `device_kind` must be one of {list(DEVICE_KINDS)}. "
                f"Received: device_kind={device_kind!r}"
            )
        return self.budgets[device_kind]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="seed",
            description="the recipe's architecture: stacked LSTM, BatchNorm, dropout",
            backbone={},
            budgets={
                "GPU": Budget(epochs=15, batch_size=64, learning_rate=1e-4, warmup_epochs=3.0),
                "CPU": Budget(epochs=4, batch_size=128, learning_rate=2e-3, warmup_epochs=1.0),
            },
        ),
        Preset(
            name="seed-large-batch",
            description="the recipe's architecture at a global batch of 2,048 in length buckets",
            # Issue 25: the seed architecture in a PyTorch reference on one H200 reached
            # the recipe's test accuracy (0.9946 vs 0.9944) at global batch 2,048,
            # bucketed, 3e-3, 1 warmup epoch, 15 epochs, in 5.9 s (fp32) / 3.9 s (bf16)
            # instead of 85 s. The same budget on every device, so that its accuracy
            # can be checked on a CPU; bf16 on GPUs that support it (`mixed_precision`).
            backbone={},
            budgets={
                kind: Budget(
                    epochs=15,
                    batch_size=None,
                    global_batch_size=2048,
                    learning_rate=3e-3,
                    warmup_epochs=1.0,
                    # Chosen on validation (benchmarks/README.md): with batch
                    # renormalization, 3e-3 diverged at one seed of two and 1.5e-3 spiked
                    # at both; a batch of 2,048 has statistics of its own. 5 batches:
                    # 10,240 posts, above pycls' 8,192 samples for precise BN.
                    precise_bn_batches=5,
                    batch_renormalization=False,
                )
                for kind in DEVICE_KINDS
            },
            mixed_precision="auto",
        ),
        Preset(
            name="best",
            description="character bigrams, masked mean+max pooling, no BatchNorm, token dropout",
            backbone=dict(
                embedding_dim=64,
                bigram_buckets=20_000,
                pooling="mean_max",
                batch_norm=False,
                dropout=0.5,
                embedding_dropout=0.2,
                token_dropout=0.2,
                l2=1e-4,
            ),
            budgets={
                "GPU": Budget(epochs=6, batch_size=128, learning_rate=2e-3, warmup_epochs=0.5),
                "CPU": Budget(epochs=6, batch_size=128, learning_rate=2e-3, warmup_epochs=0.5),
            },
        ),
        Preset(
            name="pretrained",
            description="the best head on the shipped character-LM-pretrained encoder",
            # Chosen on validation by benchmarks/fine_tune_search.py ("fast_full"): the
            # encoder trains at the head's learning rate from the first step (a lower
            # encoder rate, x0.33, or a frozen first epoch lost 1-3 points).
            backbone=dict(
                pooling="mean_max",
                dense_units=32,
                dropout=0.3,
                embedding_dropout=0.1,
                token_dropout=0.1,
                l2=0.0,
            ),
            budgets={
                "GPU": Budget(epochs=4, batch_size=64, learning_rate=3e-3, warmup_epochs=0.5),
                "CPU": Budget(epochs=4, batch_size=64, learning_rate=3e-3, warmup_epochs=0.5),
            },
            encoder="pretrained_char_lm",
        ),
    )
}

#: The preset used when none is given: the seed's on GPUs (as the recipe ran); on a CPU
#: the pretrained encoder, which beat `best` on validation on the corpora measured
#: (benchmarks/README.md).
DEFAULT_PRESET = {"GPU": "seed", "CPU": "pretrained"}


#: Package data: the shipped encoders (and models), one directory each.
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def encoder_path(encoder: str) -> str:
    """The directory of a preset's `encoder`: shipped package data, or a path."""
    shipped = ASSETS / encoder
    return str(shipped) if shipped.is_dir() else encoder


#: The encoder pretrained by `tools/pretrain_preset.py`, shipped as package data.
PRETRAINED_ENCODER = ASSETS / "pretrained_char_lm"

#: Trained classifiers shipped as package data (name -> directory under `ASSETS`),
#: built by `tools/build_shipped_model.py`; see docs/model_card.md. Unlike `PRESETS`,
#: `SentimentClassifier.from_preset` loads them ready to predict.
TRAINED_MODELS = {"sentiment_zh": "sentiment_zh"}
#: What `weibo-lstm predict`, `evaluate` and `export` use without `--model`.
DEFAULT_MODEL = "sentiment_zh"


def trained_model_path(name: str = DEFAULT_MODEL) -> Path:
    """The directory of a shipped trained classifier.

    Raises:
        ConfigError: if there is no such model.
    """
    if name not in TRAINED_MODELS:
        raise ConfigError(
            f"Argument `name` must be one of {sorted(TRAINED_MODELS)}. Received: name={name!r}"
        )
    return ASSETS / TRAINED_MODELS[name]


def get_preset(name: str | None, device_kind: str = "CPU") -> Preset:
    """The preset called `name`, or the default one for `device_kind` if `name` is None.

    Raises:
        ConfigError: if there is no such preset.
    """
    if name is None:
        name = DEFAULT_PRESET[device_kind]
    if name not in PRESETS:
        raise ConfigError(
            f"Argument `preset` must be one of {sorted(PRESETS)}. Received: preset={name!r}"
        )
    return PRESETS[name]


def describe_default(option: str, device_kind: str | None = None) -> str:
    """The default of budget `option` on this machine, for `--help` (None as `none`,
    the flags' spelling).

    Example:

    >>> describe_default("epochs", "CPU")  # doctest: +NORMALIZE_WHITESPACE
    'default: 4 on this CPU machine (preset pretrained; 4 with --preset seed;
    15 with --preset seed-large-batch; 6 with --preset best)'
    """
    kind = device_kind or probable_device_kind()
    chosen = PRESETS[DEFAULT_PRESET[kind]]

    def value(preset: Preset) -> str:
        setting = getattr(preset.budget(kind), option)
        return "none" if setting is None else str(setting)

    others = "; ".join(
        f"{value(p)} with --preset {p.name}" for p in PRESETS.values() if p is not chosen
    )
    return f"default: {value(chosen)} on this {kind} machine (preset {chosen.name}; {others})"
