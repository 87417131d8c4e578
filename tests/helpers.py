"""Shared test helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from weibo_lstm.training.option_groups import make_options


def assert_serialization_round_trip(obj, call, *, atol=0.0):
    """`get_config` → `from_config` gives an object whose `call(obj)` output matches."""
    config = obj.get_config()
    restored = type(obj).from_config(config)
    assert restored.get_config() == config
    expected = call(obj)
    actual = call(restored)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=0)
    return restored


def trainer_options(global_batch: int, replicas: int, **kwargs):
    """Small, fast `(TrainerOptions, ControllerOptions)` for tests: 2 epochs at
    `global_batch`, lr 1e-2 unscaled; `kwargs` are fields of either group."""
    defaults = dict(
        epochs=2,
        batch_size=global_batch // replicas,
        learning_rate=1e-2,
        lr_scaling="none",
        warmup_epochs=1,
        quiet=True,
        steps_per_loop=3,
    )
    return make_options(defaults | kwargs)


_LOADER = textwrap.dedent(
    """
    import json, sys

    class Forbid:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("weibo_lstm", "tensorflow_text"):
                raise ImportError(f"{name} must not be imported")

    sys.meta_path.insert(0, Forbid())
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    *paths, texts_file = sys.argv[1:]
    texts = [bytes.fromhex(t) for t in json.load(open(texts_file))]

    def plain(v):
        values = v.numpy().tolist()
        return [x.decode("utf-8") for x in values] if v.dtype == tf.string else values

    for path in paths:  # one JSON line each
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serve"]
        outputs = serve(texts=tf.constant(texts, tf.string))

        proto = saved_model_pb2.SavedModel()
        with open(path + "/saved_model.pb", "rb") as f:
            proto.ParseFromString(f.read())
        graph = proto.meta_graphs[0].graph_def
        ops = {n.op for n in graph.node} | {
            n.op for f in graph.library.function for n in f.node_def
        }
        print(json.dumps({
            "outputs": {k: plain(v) for k, v in outputs.items()},
            "dtypes": {k: v.dtype.name for k, v in outputs.items()},
            "input": {k: [v.dtype.name, v.shape.as_list()]
                      for k, v in serve.structured_input_signature[1].items()},
            "non_core_ops": sorted(op for op in ops if not hasattr(tf.raw_ops, op)),
            "loaded_forbidden": sorted(
                m for m in sys.modules if m.split(".")[0] in ("weibo_lstm", "tensorflow_text")
            ),
            "serving_default": "serving_default" in loaded.signatures,
        }))
    """
)


def run_python(code: str, repo_root) -> str:
    """Runs `code` in a fresh Python process that imports this repository; its stdout.

    Fails the test (with the end of stderr) when the process does not exit with 0.
    """
    env = dict(os.environ, PYTHONPATH=str(repo_root), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def load_in_fresh_process(path, texts, tmp_path):
    """Serves `texts` (bytes) from the SavedModel at `path` in a process that may
    import neither weibo_lstm nor tensorflow_text; returns its JSON report."""
    return load_all_in_fresh_process([path], texts, tmp_path)[0]


def load_all_in_fresh_process(paths, texts, tmp_path):
    """`load_in_fresh_process` for several SavedModels, in one process (one
    TensorFlow start); their reports, in order."""
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps([t.hex() for t in texts]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run(
        [sys.executable, "-c", _LOADER, *map(str, paths), str(texts_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.strip().splitlines()[-len(paths) :]]


def batch_mask_problems(ids: np.ndarray) -> list[str]:
    """Rows of a padded id batch (0 = padding) that cuDNN could not take."""
    mask = np.asarray(ids) != 0
    problems = []
    for row, m in enumerate(mask):
        length = int(m.sum())
        if length == 0:
            problems.append(f"row {row} is fully masked")
        elif not m[:length].all():
            problems.append(f"row {row} is not right-padded")
    return problems


def windowed_reference(model, tokenizer, texts, *, pooling="mean", stride=None):
    """The probabilities of `texts` read in windows, computed the long way: every id of
    a text (the tokenizer's own `__call__` with no practical limit), windows of
    `max_length` ids sliced by hand every `stride` ids plus one ending at the text's
    end, the model run on each text's windows alone (padded to `max_length`, as in
    training), and the pooling written out per text."""
    from weibo_lstm import Tokenizer

    size = tokenizer.max_length
    stride = stride or max(size // 2, 1)
    config = {**tokenizer.get_config(), "max_length": 10**7}
    unlimited = Tokenizer.from_config(config)
    rows = []
    for ids in unlimited(texts, ragged=True).to_list():
        if len(ids) <= size:
            windows = [ids]
        else:
            windows = [ids[s : s + size] for s in range(0, len(ids) - size, stride)]
            windows.append(ids[len(ids) - size :])
        # Padded to `max_length`, the training layout (a long text's windows are full).
        batch = np.zeros((len(windows), size), np.int32)
        for row, window in zip(batch, windows, strict=True):
            row[: len(window)] = window
        outputs = list(model(batch, training=False).numpy())
        if pooling == "mean":
            rows.append(np.mean(outputs, axis=0))
        elif pooling == "last":
            rows.append(outputs[-1])
        else:  # the most confident window, the first of equals
            confidence = [max(o) for o in outputs]
            rows.append(outputs[confidence.index(max(confidence))])
    return np.array(rows)


def blanks_unanswered(rows, texts) -> np.ndarray:
    """An engine's `rows` for `texts` as `SentimentClassifier.predict` answers them: a
    row of NaN for each blank text (`answers.is_blank`)."""
    from weibo_lstm.serving.answers import is_blank

    rows = np.array(rows, np.float32)
    rows[[is_blank(text) for text in texts]] = np.nan
    return rows
