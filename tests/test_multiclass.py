"""Label sets beyond binary: three and six classes end to end, partial labels, label
subsets, and a binary run's report header as it was."""

import csv
import json
import logging

import numpy as np
import pytest
import tensorflow as tf

import weibo_lstm as wl
from tests.synthetic import EDGE_CASE_TEXTS
from weibo_lstm.cli.main import main
from weibo_lstm.data.label_sets import POLARITY, concatenate, relabel
from weibo_lstm.jobs import report as reporting
from weibo_lstm.serving.numpy_predictor import NumpyPredictor
from weibo_lstm.training.objectives import ClassificationObjective

EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")
CUES = list("好差中怕哭哇")  # one cue character per class, in class order
FILLER = list("的了是我你他这那在有和就不人都一个上也很到说要去会着没看")

#: The header of a binary run's report before label sets (0.2, from the example's
#: run at commit 5037700), without `largest_epoch_boundary_s`, which left with the
#: epoch-boundary instrumentation.
BINARY_HEADER = (
    "timestamp,best_epoch,best_val_loss,best_val_accuracy,best_val_precision,best_val_recall,"
    "final_test_loss,final_test_accuracy,final_test_precision,final_test_recall,"
    "report_积极_precision,report_积极_recall,report_积极_f1-score,report_积极_support,"
    "report_消极_precision,report_消极_recall,report_消极_f1-score,report_消极_support,"
    "report_accuracy,report_macro_avg_precision,report_macro_avg_recall,"
    "report_macro_avg_f1-score,report_macro_avg_support,report_weighted_avg_precision,"
    "report_weighted_avg_recall,report_weighted_avg_f1-score,report_weighted_avg_support,"
    "replicas,workers,device,global_batch_size,peak_learning_rate,epochs_run,train_time_s,"
    "examples_per_second,data,train_rows,val_rows,test_rows,input_rows,dropped_empty_rows,"
    "duplicate_rows,dropped_duplicate_rows,truncated_rows,skipped_nonfinite_steps,"
    "resumed_at_step,deterministic,strip_emoticons,max_length,model,library_version,"
    "model_dir,encoder,mixed_precision,emoticon_dropout,test_accuracy_emoticons_stripped,"
    "wide,test_accuracy_deep,test_accuracy_wide,test_accuracy_wide_and_deep,wide_fit_s"
)


def write_classes(path, names, n=240, seed=0):
    """A CSV whose class k posts carry cue character k (names as the labels)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "review"])
        for i in range(n):
            k = i % len(names)
            words = list(rng.choice(FILLER, rng.integers(3, 10))) + [CUES[k]] * 2
            rng.shuffle(words)
            writer.writerow([names[k], "".join(words) + str(i % 17)])
    return path


# Six classes run with `-m slow` (CI runs them); three stay in the default suite.
@pytest.fixture(
    scope="module",
    params=[POLARITY, pytest.param(EMOTIONS, marks=pytest.mark.slow)],
    ids=["three", "six"],
)
def trained(request, tmp_path_factory, fast_train_flags):
    """One training run per label set, through the command line."""
    names = request.param
    work = tmp_path_factory.mktemp("classes")
    data = write_classes(work / "data.csv", names)
    status = main(
        ["train", "--data", str(data), "--output-dir", str(work / "out"), *fast_train_flags]
    )
    assert status == 0
    return names, work


def test_k_classes_train_save_export_and_serve_alike(trained, tmp_path, load_in_fresh_process):
    names, work = trained
    (model_dir,) = sorted((work / "out").glob("model_*"))
    classifier = wl.SentimentClassifier.load(model_dir)
    assert classifier.class_names == names  # the data's names, in their fixed order
    assert json.loads((model_dir / "classifier.json").read_text("utf-8"))["class_names"] == list(
        names
    )
    texts = [*EDGE_CASE_TEXTS, *(c * 3 for c in CUES[: len(names)])]
    keras_probabilities = classifier.predictor().predict(texts)["probabilities"]  # blank rows too
    assert keras_probabilities.shape == (len(texts), len(names))
    numpy_outputs = NumpyPredictor(model_dir).predict(texts)
    np.testing.assert_allclose(numpy_outputs["probabilities"], keras_probabilities, atol=1e-5)
    assert list(numpy_outputs["label"]) == [names[i] for i in keras_probabilities.argmax(1)]
    exported = classifier.export(tmp_path / "serving")
    served = load_in_fresh_process(exported, [t.encode() for t in texts], tmp_path)
    np.testing.assert_allclose(served["outputs"]["probabilities"], keras_probabilities, atol=1e-5)
    # It learned the cues: each cue alone gets its class.
    assert keras_probabilities[-len(names) :].argmax(1).tolist() == list(range(len(names)))


def test_k_classes_report_repeats_the_seed_columns_per_class(trained, read_report):
    names, work = trained
    row, header = read_report(work / "out")
    assert tuple(header) == reporting.report_columns_of(names)
    for name in names:
        assert f"report_{name}_f1-score" in row
    assert header[-1] == "macro_f1" and 0 <= float(row["macro_f1"]) <= 1
    assert int(row["report_macro_avg_support"]) == int(row["test_rows"])


def test_a_binary_run_reports_the_header_it_always_had(tmp_path, write_csv, fast_train_flags):
    data = write_csv(tmp_path / "posts.csv", 120, seed=4)
    assert (
        main(["train", "--data", str(data), "--output-dir", str(tmp_path), *fast_train_flags]) == 0
    )
    (path,) = tmp_path.glob("training_report_*.csv")
    first_line = path.read_bytes().split(b"\r\n")[0]
    assert first_line == b"\xef\xbb\xbf" + BINARY_HEADER.encode("utf-8")


def test_evaluate_on_a_label_subset_takes_the_argmax_over_its_classes(
    trained, tmp_path, capsys, caplog
):
    names, work = trained
    if names != POLARITY:
        pytest.skip("the three-class model")
    (model_dir,) = sorted((work / "out").glob("model_*"))
    binary = write_classes(tmp_path / "binary.csv", ("消极", "积极"), n=40, seed=9)
    with caplog.at_level(logging.INFO, logger="weibo_lstm"):
        assert main(["evaluate", "--model", str(model_dir), "--data", str(binary), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert any("2 of the model's 3 classes" in r.getMessage() for r in caplog.records)
    data = wl.load_csv(binary)
    probabilities = wl.SentimentClassifier.load(model_dir).predict(list(data.texts))
    by_hand = np.mean(probabilities[:, :2].argmax(1) == data.labels)  # 中性 never chosen
    assert result["metrics"]["accuracy"] == pytest.approx(by_hand, abs=1e-9)
    assert result["class_names"] == list(POLARITY)
    assert np.array(result["confusion_matrix"])[:, 2].sum() == 0


def test_the_partial_label_loss_is_the_label_likelihood_among_the_expressible_classes():
    probabilities = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.1, 0.2, 0.7]], np.float32)
    labels = np.array([1, 0, 0])
    expressible = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 0]], np.float32)
    batch = {
        "ids": tf.zeros([3, 1], tf.int32),
        "labels": tf.constant(labels, tf.int32),
        "weights": tf.constant([1.0, 1.0, 1.0]),
        "expressible": tf.constant(expressible),
    }
    objective = ClassificationObjective(num_classes=3)
    loss, stats = objective(lambda ids, training: tf.constant(probabilities), batch, training=True)
    # By hand: -log(p_y / sum of the row's expressible p).
    expected = [-np.log(0.5 / 0.7), -np.log(0.6 / 1.0), -np.log(0.1 / 0.3)]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
    metrics = objective.metrics(stats.numpy())
    # Row 3 would be class 2 over all classes; among its two it is class 1: wrong.
    assert metrics["accuracy"] == pytest.approx(2 / 3)


def test_relabelled_corpora_train_on_their_own_classes_only():
    """Pooled binary and three-class rows: the binary rows never say 中性."""
    binary = relabel(wl.LabeledTexts(["好", "差"], [1, 0]), POLARITY, {})
    emotions = wl.LabeledTexts(
        ["嗯", "哇", "好"], [0, 1, 2], class_names=("neutral", "surprise", "happy")
    )
    pooled = concatenate(
        [
            binary,
            relabel(emotions, POLARITY, {"neutral": "中性", "happy": "积极", "surprise": None}),
        ]
    )
    assert pooled.texts == ("好", "差", "嗯", "好")
    assert pooled.labels.tolist() == [1, 0, 2, 1]
    # The emotion rows can say 积极 and 中性, not 消极 (no emotion of theirs maps to it).
    assert pooled.expressible.tolist() == [
        [True, True, False],
        [True, True, False],
        [False, True, True],
        [False, True, True],
    ]


def test_fit_continues_a_trained_model_or_puts_a_new_head_on_its_backbone(tmp_path):
    """The same classes: the trained head goes on training; other classes: a new head
    on the trained backbone (the 0.2 `best` directory of tests/data, tiny)."""
    from pathlib import Path

    trained = Path(__file__).parent / "data" / "legacy_0.2" / "best"
    binary = wl.load_csv(write_classes(tmp_path / "binary.csv", ("消极", "积极"), n=64, seed=1))
    classifier = wl.SentimentClassifier.load(trained)
    backbone, head = classifier.deep.backbone, classifier.deep.head
    before = [w.numpy().copy() for w in head.weights]
    classifier.fit(binary, binary, epochs=1, batch_size=16, quiet=True, wide=False)
    assert classifier.deep.head is head and classifier.deep.backbone is backbone
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, head.weights, strict=True))

    three = wl.load_csv(write_classes(tmp_path / "three.csv", POLARITY, n=90, seed=2))
    classifier = wl.SentimentClassifier.load(trained)
    backbone = classifier.deep.backbone
    encoder = [w.numpy().copy() for w in backbone.weights]
    classifier.fit(
        three, three, epochs=1, batch_size=16, quiet=True, wide=False, learning_rate=1e-9
    )
    assert classifier.class_names == POLARITY and classifier.deep.num_classes == 3
    assert classifier.deep.backbone is backbone  # the trained backbone, under a new head
    for a, w in zip(encoder, backbone.weights, strict=True):
        np.testing.assert_allclose(a, w.numpy(), atol=1e-6)  # barely moved at that rate
    assert classifier.predict(["好"]).shape == (1, 3)


def test_train_init_starts_from_a_trained_model_directory(tmp_path, fast_train_flags, read_report):
    from pathlib import Path

    trained = Path(__file__).parent / "data" / "legacy_0.2" / "best"
    data = write_classes(tmp_path / "three.csv", POLARITY, n=120, seed=3)
    flags = [f for f in fast_train_flags if f not in ("--preset", "best")]
    out = tmp_path / "out"
    assert (
        main(
            ["train", "--init", str(trained), "--data", str(data), "--output-dir", str(out), *flags]
        )
        == 0
    )
    (model_dir,) = out.glob("model_*")
    assert wl.SentimentClassifier.load(model_dir).class_names == POLARITY
    row, _ = read_report(out)
    # The 0.2 directory records no preset: the device's default budget trained it.
    assert row["model"] == "pretrained" and int(row["epochs_run"]) == 4
