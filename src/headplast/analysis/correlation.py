"""Spearman's rank correlation with the guard every analysis module needs: a side that is
constant over the heads has no ranking, so its rho is undefined (NaN) rather than scipy's NaN
with a warning.

A module of its own so that both :mod:`headplast.analysis.reliability` and
:mod:`headplast.analysis.statistics` (which imports the former) can use it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats as sps


class Spearman(NamedTuple):
    """Spearman's rho between two sides (in [-1, 1]) and its asymptotic two-sided p-value
    (``scipy.stats.spearmanr``); both NaN when a side is constant."""

    rho: float
    p: float


def has_constant_side(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``x`` or ``y`` takes one value only (then no rank correlation is defined)."""
    return bool(np.ptp(x) == 0 or np.ptp(y) == 0)


def spearman(x: np.ndarray, y: np.ndarray) -> Spearman:
    """Spearman's rho and its asymptotic p between paired values ``x`` and ``y`` (average ranks
    for ties); ``(nan, nan)`` when either side is constant."""
    if has_constant_side(x, y):
        return Spearman(math.nan, math.nan)
    res = sps.spearmanr(x, y)
    return Spearman(float(res.statistic), float(res.pvalue))
