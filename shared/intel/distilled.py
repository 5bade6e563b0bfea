"""The distilled predictor: once enough LLM analyses exist, a small model learns to predict the
LLM's quality score (ridge regression) and sentiment (L2 logistic regression) from the track
embedding plus the algorithmic features. Pure numpy: nothing to install, fits in well under a second.

Honesty about its own accuracy: 20 % of the labels are held out, the ridge strength is picked by
cross-validation on the rest, and the held-out MAE is what gets reported (and what decides whether
the router may use it at all). A per-item confidence combines the sentiment probability with how
far the item lies from the training data (leverage): unusual inputs go to the LLM.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from shared.intel.profile import Sentiment

__all__ = ["SENTIMENTS", "DistilledModel", "DistilledPrediction", "fit_distilled"]

SENTIMENTS: tuple[Sentiment, ...] = ("negative", "neutral", "positive", "mixed")
_LAMBDAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
_LOGISTIC_LAMBDAS = (1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class DistilledPrediction:
    quality: float
    sentiment: Sentiment
    sentiment_p: float
    in_distribution: bool
    confidence: float


@dataclass
class DistilledModel:
    mean: np.ndarray
    std: np.ndarray
    w_quality: np.ndarray
    w_sentiment: np.ndarray  # (d + 1, classes)
    gram_inv: np.ndarray  # for leverage
    leverage_cut: float
    lam: float
    labels: int
    mae_quality: float  # held out
    acc_sentiment: float  # held out
    calibration: float = 1.0  # held-out accuracy / mean top probability: shrinks overconfident p
    embedding_model: str = ""
    id: int = 0

    def _design(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(x) - self.mean) / self.std
        return np.hstack([z, np.ones((z.shape[0], 1))])

    def predict(self, x: np.ndarray) -> DistilledPrediction:
        z = self._design(x)
        quality = float(np.clip(z @ self.w_quality, 1, 10)[0])
        p = _softmax(z @ self.w_sentiment)[0]
        k = int(np.argmax(p))
        leverage = float(z[0] @ self.gram_inv @ z[0])
        inside = leverage <= self.leverage_cut
        # MAE of 0 → 1.0, MAE of 2.5 → 0.5: the held-out error bounds how far any one answer is trusted.
        accuracy_term = max(0.0, 1 - self.mae_quality / 5)
        confidence = min(float(p[k]) * self.calibration, accuracy_term) * (1.0 if inside else 0.5)
        return DistilledPrediction(quality, SENTIMENTS[k], float(p[k]), inside, round(confidence, 3))

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            mean=self.mean,
            std=self.std,
            w_quality=self.w_quality,
            w_sentiment=self.w_sentiment,
            gram_inv=self.gram_inv,
            scalars=np.array(
                [self.leverage_cut, self.lam, self.labels, self.mae_quality, self.acc_sentiment, self.calibration]
            ),
            embedding_model=np.array(self.embedding_model),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes, *, model_id: int = 0) -> DistilledModel:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            s = z["scalars"]
            return cls(
                mean=z["mean"],
                std=z["std"],
                w_quality=z["w_quality"],
                w_sentiment=z["w_sentiment"],
                gram_inv=z["gram_inv"],
                leverage_cut=float(s[0]),
                lam=float(s[1]),
                labels=int(s[2]),
                mae_quality=float(s[3]),
                acc_sentiment=float(s[4]),
                calibration=float(s[5]),
                embedding_model=str(z["embedding_model"]),
                id=model_id,
            )


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _ridge(z: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    reg = lam * np.eye(z.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    return np.asarray(np.linalg.solve(z.T @ z + reg, z.T @ y))


def _logistic(z: np.ndarray, y: np.ndarray, classes: int, lam: float, iters: int = 400) -> np.ndarray:
    """Multinomial logistic regression by gradient descent (features are standardised)."""
    w = np.zeros((z.shape[1], classes))
    onehot = np.eye(classes)[y]
    n = z.shape[0]
    # Step size from the loss's curvature bound (softmax Hessian <= Z'Z / 2n): never diverges.
    lr = 1.0 / (0.5 * float(np.linalg.norm(z, 2)) ** 2 / n + lam / n)
    for _ in range(iters):
        grad = z.T @ (_softmax(z @ w) - onehot) / n + lam / n * np.vstack([w[:-1], np.zeros((1, classes))])
        w -= lr * grad
    return w


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    return mean, std


def _pick_lambda(z: np.ndarray, y: np.ndarray, rng: np.random.Generator, folds: int = 5) -> float:
    idx = rng.permutation(z.shape[0])
    parts = np.array_split(idx, folds)
    best, best_err = _LAMBDAS[0], float("inf")
    for lam in _LAMBDAS:
        err = 0.0
        for k in range(folds):
            test = parts[k]
            train = np.concatenate([parts[j] for j in range(folds) if j != k])
            w = _ridge(z[train], y[train], lam)
            err += float(np.abs(np.clip(z[test] @ w, 1, 10) - y[test]).sum())
        if err < best_err:
            best, best_err = lam, err
    return best


def _design_of(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.hstack([(x - mean) / std, np.ones((x.shape[0], 1))])


def _pick_logistic_lambda(z: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> float:
    idx = rng.permutation(z.shape[0])
    cut = max(1, len(idx) // 5)
    val, fit = idx[:cut], idx[cut:]
    best, best_acc = _LOGISTIC_LAMBDAS[0], -1.0
    for lam in _LOGISTIC_LAMBDAS:
        w = _logistic(z[fit], y[fit], len(SENTIMENTS), lam, iters=150)
        acc = float((np.argmax(z[val] @ w, axis=1) == y[val]).mean())
        if acc > best_acc:
            best, best_acc = lam, acc
    return best


def _leverage(z: np.ndarray, gram_inv: np.ndarray) -> np.ndarray:
    return np.asarray(np.einsum("ij,jk,ik->i", z, gram_inv, z))


def fit_distilled(
    x: np.ndarray, quality: np.ndarray, sentiment_labels: list[str], *, seed: int = 0, holdout: float = 0.2
) -> DistilledModel:
    """Fit on ``x`` (embedding ‖ features per row); report MAE and accuracy on a held-out split,
    then refit on every label for use."""
    if x.shape[0] < 10:
        raise ValueError("need at least 10 labels")
    x = np.asarray(x, dtype=np.float64)
    quality = np.asarray(quality, dtype=np.float64)
    y_s = np.array([SENTIMENTS.index(s) if s in SENTIMENTS else 1 for s in sentiment_labels])
    rng = np.random.default_rng(seed)
    order = rng.permutation(x.shape[0])
    n_test = max(2, round(x.shape[0] * holdout))
    test, train = order[:n_test], order[n_test:]
    mean, std = _standardise(x[train])
    z_train, z_test = _design_of(x[train], mean, std), _design_of(x[test], mean, std)
    lam = _pick_lambda(z_train, quality[train], rng)
    lam_s = _pick_logistic_lambda(z_train, y_s[train], rng)
    w_q = _ridge(z_train, quality[train], lam)
    w_s = _logistic(z_train, y_s[train], len(SENTIMENTS), lam_s)
    mae = float(np.abs(np.clip(z_test @ w_q, 1, 10) - quality[test]).mean())
    acc = float((np.argmax(z_test @ w_s, axis=1) == y_s[test]).mean())
    calibration = min(1.0, acc / float(_softmax(z_test @ w_s).max(axis=1).mean()))
    # Leverage with a ridge of d: with fewer labels than dimensions the plain hat matrix calls every
    # new point far. The cut comes from *held-out* points, the reference a new item should meet.
    reg = float(z_train.shape[1]) * np.eye(z_train.shape[1])
    cut = float(np.quantile(_leverage(z_test, np.linalg.inv(z_train.T @ z_train + reg)), 0.95) * 1.2)
    # The model in use learns from every label.
    mean, std = _standardise(x)
    z = _design_of(x, mean, std)
    w_q = _ridge(z, quality, lam)
    w_s = _logistic(z, y_s, len(SENTIMENTS), lam_s)
    gram_inv = np.linalg.inv(z.T @ z + reg)
    return DistilledModel(
        mean=mean,
        std=std,
        w_quality=w_q,
        w_sentiment=w_s,
        gram_inv=gram_inv,
        leverage_cut=cut,
        lam=lam,
        labels=int(x.shape[0]),
        mae_quality=round(mae, 4),
        acc_sentiment=round(acc, 4),
        calibration=round(calibration, 4),
    )
