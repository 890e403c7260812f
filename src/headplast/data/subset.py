"""Which validation examples are measured: the eval subset (config key ``eval_subset``), one
fixed sample per task shared by every seed, start and measure (docs/methods.md, "Eval subset")."""

from __future__ import annotations

import numpy as np

from headplast.data.tasks import DataError


def make_eval_subset(n_validation: int, size: int | str, seed: int) -> list[int]:
    """Sorted indices of a fixed random sample (without replacement) of ``size`` of the
    ``n_validation`` validation examples, drawn with ``numpy.random.default_rng(seed)`` alone, so
    it depends on nothing else (not on the training seed). ``size="all"``: every example."""
    if size == "all":
        return list(range(n_validation))
    if not isinstance(size, int) or size < 1 or size > n_validation:
        raise DataError(
            f"eval_subset.size = {size}: must be between 1 and the validation split size "
            f"({n_validation})"
        )
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n_validation, size=size, replace=False))
