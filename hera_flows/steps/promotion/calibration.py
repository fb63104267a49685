"""Calibration of a binary classifier's scores: expected calibration error and the Brier score.

A promotion that keeps accuracy but loses calibration changes every decision taken on a threshold or a
probability (fraud blocks, credit limits), so the model card shows both next to accuracy.

- **Brier score**: the mean squared difference between the score and the outcome (0 is perfect; 0.25 is what a
  constant 0.5 scores on balanced data).
- **Expected calibration error** (ECE, Naeini et al. 2015; Guo et al. 2017): the scores are put into ``bins``
  equal-width bins over [0, 1]; ECE is the row-weighted mean of ``|mean outcome - mean score|`` over the bins that
  hold rows. A score of exactly 1.0 falls into the last bin.

Scores must be probabilities: finite and within [0, 1]. Pure numpy, so the step image needs nothing else.
"""

from __future__ import annotations

from typing import Any

from hera_flows.steps.common import StepError


def _checked(y_true: Any, scores: Any) -> tuple[Any, Any]:
    import numpy as np

    truth = np.asarray(y_true, dtype=float).reshape(-1)
    probs = np.asarray(scores, dtype=float).reshape(-1)
    if truth.shape != probs.shape:
        raise StepError(f"{truth.shape[0]} outcomes but {probs.shape[0]} scores")
    if truth.size == 0:
        raise StepError("no rows to measure calibration on")
    if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
        raise StepError("the scores are not probabilities (finite values within [0, 1])")
    if not np.isin(truth, (0.0, 1.0)).all():
        raise StepError("the outcomes are not binary (0 or 1)")
    return truth, probs


def brier_score(y_true: Any, scores: Any) -> float:
    """Mean of (score - outcome)^2."""
    import numpy as np

    truth, probs = _checked(y_true, scores)
    return float(np.mean((probs - truth) ** 2))


def expected_calibration_error(y_true: Any, scores: Any, bins: int = 10) -> float:
    """Sum over equal-width bins of (rows in bin / rows) * |mean outcome - mean score|."""
    import numpy as np

    if bins < 1:
        raise StepError("calibration needs at least one bin")
    truth, probs = _checked(y_true, scores)
    index = np.minimum((probs * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins).astype(float)
    score_sums = np.bincount(index, weights=probs, minlength=bins)
    truth_sums = np.bincount(index, weights=truth, minlength=bins)
    held = counts > 0
    gaps = np.abs(truth_sums[held] - score_sums[held])  # = count * |mean outcome - mean score|
    return float(gaps.sum() / truth.size)
