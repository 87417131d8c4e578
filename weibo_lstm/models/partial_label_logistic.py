"""Multinomial logistic regression on labels that choose among some of the classes.

A row whose corpus can only say some of the classes (a binary corpus in a three-class
model: 积极 or 消极, never 中性) has the likelihood of its label among those classes:

    loss_i = −log( softmax(z_i)_y / Σ_{k ∈ A_i} softmax(z_i)_k ) = logsumexp_{k ∈ A_i} z_ik − z_iy

with `z_i = W·x_i + b` and `A_i` the row's expressible classes. With every class
expressible it is the ordinary multinomial cross-entropy. The objective is
scikit-learn's, `C · Σ_i loss_i + ½ ‖W‖²` (the intercept unpenalised), minimised with
L-BFGS; the gradient of `loss_i` with respect to `z_i` is the softmax over `A_i` minus
the one-hot label. NumPy and SciPy only.
"""

from __future__ import annotations

import numpy as np


def fit_partial_label_logistic(
    features, labels: np.ndarray, expressible: np.ndarray, *, C: float = 4.0, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """`(coef [features, K], intercept [K])` of the partial-label multinomial model.

    Args:
        features: `[n, features]` array or SciPy sparse matrix.
        labels: `[n]` class ids.
        expressible: `[n, K]` bool; each row's own class must be among them.
        C: inverse L2 strength, as scikit-learn's.
        tol: L-BFGS's gradient tolerance (scaled by `n` as the objective is a sum).

    Example:

    >>> x = np.array([[1.0, 0], [0, 1], [1, 1], [0, 0]])
    >>> mask = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]], bool)
    >>> coef, intercept = fit_partial_label_logistic(x, np.array([0, 1, 2, 2]), mask)
    >>> logits = x @ coef + intercept  # a row chooses among the classes it can express:
    >>> np.where(mask, logits, -np.inf).argmax(1).tolist()
    [0, 1, 2, 2]
    """
    from scipy.optimize import minimize

    labels = np.asarray(labels)
    expressible = np.asarray(expressible, bool)
    n, k = expressible.shape
    d = features.shape[1]
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    if not expressible[np.arange(n), labels].all():
        raise ValueError("Each row's label must be among its expressible classes.")
    blocked = np.where(expressible, 0.0, -np.inf)

    def objective(theta):
        coef, intercept = theta[: d * k].reshape(d, k), theta[d * k :]
        z = np.asarray(features @ coef) + intercept + blocked
        top = z.max(1, keepdims=True)
        exp = np.exp(z - top)
        total = exp.sum(1, keepdims=True)
        loss = np.sum(
            np.log(total[:, 0]) + top[:, 0] - np.sum(onehot * np.where(expressible, z, 0), 1)
        )
        residual = C * (exp / total - onehot)
        grad_coef = np.asarray(features.T @ residual) + coef
        value = C * loss + 0.5 * np.sum(coef * coef)
        return value, np.concatenate([grad_coef.ravel(), residual.sum(0)])

    start = np.zeros(d * k + k)
    result = minimize(
        objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 3000, "gtol": tol}
    )
    theta = result.x
    return theta[: d * k].reshape(d, k), theta[d * k :]
