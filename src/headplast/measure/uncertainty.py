"""The uncertainty of a per-head mean over examples: its standard error and t quantile."""

from __future__ import annotations

import math

import numpy as np


def standard_error(values: np.ndarray) -> np.ndarray:
    """sd over axis 0 (ddof 1) / sqrt(n): the standard error of the mean over examples."""
    n = values.shape[0]
    if n < 2:
        return np.full(values.shape[1:], np.nan)
    return values.std(0, ddof=1) / math.sqrt(n)


def t_quantile(n: int, level: float = 0.95) -> float:
    """t_(n-1) quantile for a two-sided ``level`` interval of a mean over n examples."""
    # scipy.stats takes 0.8 s to import, once in every measuring job; only this line needs it
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1)) if n > 1 else math.nan
