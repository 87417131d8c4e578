"""Every preset's LSTMs and every training batch qualify for the fused cuDNN kernel."""

import numpy as np
import pytest

from tests.helpers import batch_mask_problems
from weibo_lstm import LabeledTexts, Tokenizer, WeiboLSTM
from weibo_lstm.distribute.strategies import cpu_strategy
from weibo_lstm.models.cudnn import cudnn_incompatibilities, lstm_layers
from weibo_lstm.models.presets import PRESETS
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training import input_pipeline as batching


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_lstm_of_every_preset_meets_the_cudnn_conditions(preset):
    model = WeiboLSTM(50, **PRESETS[preset].backbone)
    model.build()
    assert lstm_layers(model), "no LSTM found: the check would pass vacuously"
    assert cudnn_incompatibilities(model) == []


def test_bidirectional_layers_are_checked_in_both_directions():
    model = WeiboLSTM(50, lstm_units=(4,), bidirectional=True, dense_units=0)
    model.build()
    assert len(lstm_layers(model)) == 2
    assert cudnn_incompatibilities(model) == []


def test_incompatible_options_are_named():
    import keras

    model = keras.Sequential(
        [keras.layers.LSTM(4, activation="relu", unroll=True, name="odd")], name="m"
    )
    assert cudnn_incompatibilities(model) == ["odd: activation=relu", "odd: unroll=True"]


def test_training_batches_are_right_padded_and_never_fully_masked():
    texts = ["好", "", "   ", "[哈哈]", "很好很好的一天", "差" * 50, "一般般", "😀"] * 9
    tokenizer = Tokenizer(max_length=20, strip_emoticons=True)
    tokenizer.adapt(texts)
    examples = TokenizedExamples.from_texts(
        tokenizer, LabeledTexts(texts, np.arange(len(texts)) % 2)
    )
    strategy = cpu_strategy(2)
    for bucket in (True, False):
        plan = batching.plan_epoch(examples.lengths, 16, seed=1, bucket=bucket)
        seen = 0
        for batch in batching.distribute(strategy, examples, plan):
            for ids in strategy.experimental_local_results(batch["ids"]):
                assert batch_mask_problems(ids.numpy()) == []
                seen += ids.shape[0]
        assert seen == plan.size  # every row, padding rows of the last batch included


def test_the_job_warns_on_gpus_only_when_an_lstm_cannot_use_cudnn(caplog):
    from weibo_lstm.models.cudnn import warn_if_not_cudnn

    fast = WeiboLSTM(20, lstm_units=(4,), dense_units=0)
    slow = WeiboLSTM(20, lstm_units=(4,), dense_units=0)
    slow.backbone.lstm_layers[0].cell.recurrent_dropout = 0.2
    with caplog.at_level("WARNING", logger="weibo_lstm"):
        assert warn_if_not_cudnn("GPU", fast) == []
        assert warn_if_not_cudnn("CPU", slow) == []
        assert warn_if_not_cudnn("GPU", slow) == ["lstm_0: recurrent_dropout=0.2"]
    assert [r.message for r in caplog.records if "cuDNN" in r.message] == [
        "The LSTMs will not use the fused cuDNN kernel (several times slower on a GPU): "
        "lstm_0: recurrent_dropout=0.2"
    ]
