"""Writes the old-format model directories of tests/test_legacy_format.py and their outputs.

Run with the 0.2 code (commit 5037700), from that checkout:
    PYTHONPATH=. python tests/data/legacy_0.2/make_legacy.py tests/data/legacy_0.2
"""

import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, "tests")
from synthetic import EDGE_CASE_TEXTS, texts_and_labels
from weibo_lstm.models.hybrid import wide_and_deep

import weibo_lstm as wl

out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
out.mkdir(parents=True)
texts, labels = texts_and_labels(64, seed=3)
data = wl.LabeledTexts(texts, np.array(labels))
CONFIGS = {
    "seed_bn": dict(embedding_dim=8, lstm_units=(8, 4), dense_units=4),
    "best": dict(
        embedding_dim=8,
        lstm_units=(8,),
        dense_units=4,
        batch_norm=False,
        pooling="mean_max",
        bigram_buckets=50,
        embedding_dropout=0.2,
        token_dropout=0.2,
        l2=1e-4,
    ),
    "attention_bi": dict(
        embedding_dim=8,
        lstm_units=(6, 4),
        dense_units=0,
        pooling="attention",
        bidirectional=True,
        batch_norm=False,
    ),
    "wide_and_deep": dict(
        embedding_dim=8,
        lstm_units=(8, 8),
        dense_units=4,
        batch_norm=False,
        pooling="mean_max",
        bigram_buckets=40,
        bigram_context="previous",
    ),
}
probe = [t for t in EDGE_CASE_TEXTS if t.strip()] + texts[:8]
expected = {}
for name, cfg in CONFIGS.items():
    keras.utils.set_random_seed(11)
    tok = wl.Tokenizer(max_length=40)
    tok.adapt(texts[:48])
    model = wl.WeiboLSTM(tok.vocabulary_size, **cfg)
    model.build()
    c = wl.SentimentClassifier(tokenizer=tok, backbone=model)
    c.fit(data, data, epochs=1, batch_size=16, quiet=True, wide=False, emoticon_dropout=0.0)
    if name == "wide_and_deep":
        x = c.tokenize(data)
        deep_p = c.predict_examples(x)
        c.backbone = wide_and_deep(
            c.backbone, x, x, deep_p, emoticon_ids=c._emoticon_ids(), min_df=1
        )
    c.save(out / name)
    expected[name] = c.predict(probe).tolist()
(out / "expected.json").write_text(
    json.dumps({"texts": probe, "probabilities": expected}, ensure_ascii=False, indent=1)
)
print({k: np.array(v)[:2].round(4).tolist() for k, v in expected.items()})
