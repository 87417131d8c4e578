"""Calibrated probabilities: temperature scaling, and how far from calibrated they are.

A classifier's probabilities `p` become `softmax(log p / T)` with one temperature `T`
fitted on validation rows (Guo et al. 2017, "On Calibration of Modern Neural
Networks"): the `T` that minimises their negative log-likelihood. `T > 1` softens
over-confident probabilities, `T < 1` sharpens timid ones; the argmax never changes.
`WeiboLSTMClassifier` and `WideAndDeep` apply their `temperature` in the graph, the
NumPy engine with `temperature_scaled`. NumPy and SciPy only.
"""

from __future__ import annotations

import numpy as np

#: Probabilities are clipped to [EPSILON, 1] before their logarithm.
EPSILON = 1e-7
#: The temperatures searched.
BOUNDS = (0.05, 20.0)


def temperature_scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """`softmax(log p / T)` of `[n, K]` probabilities.

    >>> temperature_scaled(np.array([[0.2, 0.8]]), 2.0).round(3).tolist()
    [[0.333, 0.667]]
    """
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True)


def fit_temperature(
    probabilities: np.ndarray, labels: np.ndarray, expressible: np.ndarray | None = None
) -> float:
    """The temperature that minimises the negative log-likelihood of `labels` under
    `temperature_scaled(probabilities, T)` (each row's label among its expressible
    classes, when given).

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 2, 2000)
    >>> confident = np.where(rng.random(2000) < 0.7, labels, 1 - labels)  # right 70 %
    >>> p = np.eye(2)[confident] * 0.98 + 0.01  # but 99 % sure
    >>> round(fit_temperature(p, labels), 2) > 1
    True
    """
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(np.asarray(probabilities, np.float64), EPSILON, 1.0))
    rows = np.arange(len(labels))
    blocked = 0.0 if expressible is None else np.where(expressible, 0.0, -np.inf)

    def loss(temperature: float) -> float:
        z = logp / temperature + blocked
        top = z.max(axis=1, keepdims=True)
        log_total = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
        return float(np.sum(log_total - z[rows, labels]))

    return float(minimize_scalar(loss, bounds=BOUNDS, method="bounded").x)


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 15
) -> float:
    """ECE: the gap between confidence (the top probability) and accuracy, averaged
    over `bins` equal-width confidence bins weighted by their rows.

    >>> # Both rows 90 % sure, one of them right: |0.9 - 0.5|.
    >>> round(expected_calibration_error(np.array([[0.1, 0.9], [0.9, 0.1]]), np.array([1, 1])), 6)
    0.4
    """
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def calibrate(
    probabilities: np.ndarray, labels: np.ndarray, expressible: np.ndarray | None = None
) -> dict[str, float]:
    """Fits the temperature on validation rows and reports it with their ECE before
    and after (over the rows labelled among all classes: `expressible` all true).

    Returns:
        `{"temperature", "ece_before", "ece_after", "rows"}`; `SentimentClassifier`
        keeps it in its metadata as `calibration`.

    >>> report = calibrate(np.array([[0.01, 0.99], [0.99, 0.01]] * 50), np.array([1, 1] * 50))
    >>> report["temperature"] > 1, report["ece_after"] < report["ece_before"]
    (True, True)
    """
    temperature = fit_temperature(probabilities, labels, expressible)
    single = np.ones(len(labels), bool) if expressible is None else np.asarray(expressible).all(1)
    rows, labels = np.asarray(probabilities)[single], np.asarray(labels)[single]
    return {
        "temperature": round(temperature, 4),
        "ece_before": round(expected_calibration_error(rows, labels), 4),
        "ece_after": round(
            expected_calibration_error(temperature_scaled(rows, temperature), labels), 4
        ),
        "rows": int(single.sum()),
    }
