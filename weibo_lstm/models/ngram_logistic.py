"""NgramLogisticRegression: TF-IDF over character 1-3-grams + logistic regression, as a layer.

Binary (one logit) or multinomial (one logit per class); fitted on rows whose labels
may say less than every class (`LabeledTexts.expressible`) by the likelihood of the
label among the classes the row can express.

The linear baseline that a scikit-learn user builds in twenty seconds, fitted with
scikit-learn on the host and then run inside the graph on the same token ids the LSTM
reads, so that a hybrid model still exports as one SavedModel of core TensorFlow ops.

N-grams are taken over token ids (`Tokenizer` output: 0 = padding, 1 = OOV), so they
see exactly the normalised, truncated text the LSTM sees. Each n-gram of ids below
2**21 is one exact int64 key (no hashing, no collisions); the vocabulary is a sorted
key array searched with `tf.searchsorted`, so the layer has no lookup-table resource
and saves and loads like any Keras layer.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.errors import check_fields
from weibo_lstm.models.ngram_features import KEY_BITS, MAX_ORDER, ngram_keys, tfidf_logits
from weibo_lstm.models.partial_label_logistic import fit_partial_label_logistic

__all__ = ["NgramLogisticRegression", "ngram_keys"]


@keras.saving.register_keras_serializable(package="weibo_lstm")
class NgramLogisticRegression(keras.layers.Layer):
    """Logits from TF-IDF weighted id n-grams: `W · tfidf(x) / ‖tfidf(x)‖ + b`.

    With two classes, one logit (of class 1) per row, `[batch]`; with more, one per
    class, `[batch, num_classes]`.

    With count `c` of an n-gram in a text, its feature is `(1 + ln c) · idf`
    (scikit-learn's `sublinear_tf=True` with smoothed idf), rows are L2-normalised,
    and n-grams outside the vocabulary are ignored — as `TfidfVectorizer` does.

    Args:
        vocabulary_size: number of n-gram keys (set by `fit`).
        max_order: longest n-gram (1–3).
        num_classes: 2 (one logit) or more (multinomial).
        **kwargs: passed to `keras.layers.Layer`.

    Example:

    >>> layer = NgramLogisticRegression.fit(
    ...     np.array([2, 3, 2, 4, 5, 4]), np.array([0, 3, 6]), np.array([1, 0]), min_df=1)
    >>> logits = layer(np.array([[2, 3, 0], [4, 5, 4]]))
    >>> bool(logits[0] > 0 > logits[1])
    True
    """

    def __init__(
        self, vocabulary_size: int = 1, max_order: int = 3, num_classes: int = 2, **kwargs
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.max_order = int(max_order)
        self.num_classes = int(num_classes)
        check_fields(
            self,
            max_order=(1 <= self.max_order <= MAX_ORDER, "in [1, 3]"),
            num_classes=(self.num_classes >= 2, ">= 2"),
        )
        # Two classes keep one logit: the shape every binary model was saved with.
        outputs = () if self.num_classes == 2 else (self.num_classes,)
        self.keys = self.add_weight(
            shape=(self.vocabulary_size,),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            name="keys",
        )
        self.idf = self.add_weight(
            shape=(self.vocabulary_size,), initializer="zeros", trainable=False, name="idf"
        )
        self.coef = self.add_weight(
            shape=(self.vocabulary_size, *outputs),
            initializer="zeros",
            trainable=False,
            name="coef",
        )
        self.intercept = self.add_weight(
            shape=outputs, initializer="zeros", trainable=False, name="intercept"
        )

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        row_splits: np.ndarray,
        labels: np.ndarray,
        *,
        num_classes: int = 2,
        expressible: np.ndarray | None = None,
        max_order: int = 3,
        min_df: int = 2,
        max_features: int | None = None,
        C: float = 4.0,
        tol: float = 1e-4,
        **kwargs,
    ) -> NgramLogisticRegression:
        """Fits TF-IDF + `LogisticRegression(C)` on id rows and returns the layer.

        Args:
            values, row_splits: the training rows (e.g. `TokenizedExamples`).
            labels: their class ids.
            num_classes: the number of classes (2: binary, scikit-learn's logistic
                regression).
            expressible: `[rows, num_classes]` bool, the classes each row's label was
                chosen among (`LabeledTexts.expressible`); None: every class. Then the
                row's loss is its label's likelihood among those classes
                (`partial_label_logistic`).
            max_order: longest n-gram.
            min_df: keep n-grams that occur in at least this many rows.
            max_features: keep at most this many n-grams, the most frequent in the
                training rows (after `min_df`; ties: the smaller key), as
                `TfidfVectorizer(max_features=...)` does; None keeps all. A smaller
                model on disk.
            C: inverse L2 strength of the logistic regression.
            tol: its stopping tolerance (scikit-learn's default).
            **kwargs: passed to the constructor (e.g. `name`).
        """
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        n = len(row_splits) - 1
        rows, keys = ngram_keys(values, row_splits, max_order)
        vocabulary, columns = np.unique(keys, return_inverse=True)
        counts = sparse.csr_matrix(
            (np.ones(len(keys), np.float64), (rows, columns)), shape=(n, len(vocabulary))
        )
        counts.sum_duplicates()
        document_frequency = np.bincount(counts.indices, minlength=len(vocabulary))
        kept = np.flatnonzero(document_frequency >= min_df)
        if max_features is not None and len(kept) > max_features:
            frequency = np.asarray(counts[:, kept].sum(axis=0)).ravel()
            kept = np.sort(kept[np.argsort(-frequency, kind="stable")[:max_features]])
        if len(kept) == 0:
            raise ValueError(f"No n-gram occurs in at least min_df={min_df} rows")
        counts = counts[:, kept]
        idf = np.log((1 + n) / (1 + document_frequency[kept])) + 1
        features = counts.copy()
        features.data = 1 + np.log(features.data)
        features = features.multiply(idf[None, :]).tocsr()
        norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1))).ravel()
        features = sparse.diags(1 / np.maximum(norms, 1e-12)) @ features
        if expressible is None:
            model = LogisticRegression(C=C, max_iter=3000, tol=tol).fit(features, labels)
            coef, intercept = model.coef_.T, model.intercept_
            if num_classes > 2 and len(model.classes_) != num_classes:
                raise ValueError(
                    f"the training rows hold {len(model.classes_)} of {num_classes} classes"
                )
        else:
            coef, intercept = fit_partial_label_logistic(
                features, labels, expressible, C=C, tol=tol
            )
        if num_classes == 2:
            coef, intercept = coef[:, -1], intercept[-1]  # the logit of class 1
        layer = cls(
            vocabulary_size=len(kept), max_order=max_order, num_classes=num_classes, **kwargs
        )
        layer.keys.assign(vocabulary[kept])
        layer.idf.assign(idf.astype(np.float32))
        layer.coef.assign(np.asarray(coef, np.float32))
        layer.intercept.assign(np.asarray(intercept, np.float32))
        return layer

    def decision_function(self, values: np.ndarray, row_splits: np.ndarray) -> np.ndarray:
        """`[n]` (binary) or `[n, num_classes]` logits of ragged id rows, computed on the
        host with NumPy.

        The same function as `call` (which runs in the graph on padded batches), for
        rows already in host memory, e.g. `TokenizedExamples` (unpadded: every id
        is > 0).

        >>> layer = NgramLogisticRegression.fit(
        ...     np.array([2, 3, 2, 4, 5, 4]), np.array([0, 3, 6]), np.array([1, 0]), min_df=1)
        >>> host = layer.decision_function(np.array([2, 3, 4, 5, 4]), np.array([0, 2, 5]))
        >>> graph = layer(np.array([[2, 3, 0], [4, 5, 4]])).numpy()
        >>> bool(np.allclose(host, graph, atol=1e-6))
        True
        """
        return tfidf_logits(
            values,
            row_splits,
            keys=self.keys.numpy(),
            idf=self.idf.numpy(),
            coef=self.coef.numpy(),
            intercept=self.intercept.numpy(),
            max_order=self.max_order,
        )

    def call(self, ids):
        ids = tf.cast(ids, tf.int64)
        batch, width = tf.shape(ids)[0], tf.shape(ids)[1]
        valid = ids > 0
        keys, rows = [ids], [tf.broadcast_to(tf.range(batch)[:, None], tf.shape(ids))]
        masks, key = [valid], ids
        for order in range(2, self.max_order + 1):
            span = tf.maximum(width - order + 1, 0)
            key = (
                tf.bitwise.left_shift(key[:, :span], KEY_BITS)
                | ids[:, order - 1 : order - 1 + span]
            )
            keys.append(key)
            rows.append(rows[0][:, :span])
            masks.append(masks[-1][:, :span] & valid[:, order - 1 : order - 1 + span])
        keys = tf.concat([tf.reshape(k, [-1]) for k in keys], 0)
        rows = tf.concat([tf.reshape(r, [-1]) for r in rows], 0)
        mask = tf.concat([tf.reshape(m, [-1]) for m in masks], 0)
        # Vocabulary search: the sorted key array, no table resource.
        position = tf.searchsorted(self.keys, keys, out_type=tf.int64)
        position = tf.minimum(position, self.vocabulary_size - 1)
        found = mask & tf.equal(tf.gather(self.keys, position), keys)
        position, rows = tf.boolean_mask(position, found), tf.boolean_mask(rows, found)
        # Count each (row, n-gram) pair.
        pair = tf.cast(rows, tf.int64) * self.vocabulary_size + position
        unique_pairs, index = tf.unique(pair)
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(index, tf.float32), index, tf.size(unique_pairs)
        )
        pair_rows = tf.cast(unique_pairs // self.vocabulary_size, tf.int32)
        pair_columns = unique_pairs % self.vocabulary_size
        value = (1 + tf.math.log(counts)) * tf.gather(self.idf, pair_columns)
        norm = tf.sqrt(tf.math.unsorted_segment_sum(value * value, pair_rows, batch))
        weights = tf.gather(self.coef, pair_columns)
        if self.num_classes > 2:
            value = value[:, None]
            norm = norm[:, None]
        dot = tf.math.unsorted_segment_sum(value * weights, pair_rows, batch)
        return dot / tf.maximum(norm, 1e-12) + self.intercept

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) if self.num_classes == 2 else (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"vocabulary_size": self.vocabulary_size, "max_order": self.max_order})
        if self.num_classes != 2:  # binary configs stay what they always were
            config["num_classes"] = self.num_classes
        return config
