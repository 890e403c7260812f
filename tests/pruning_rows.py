"""Synthetic pruning.jsonl rows, shared by the pruning and degenerate-run tests."""

from __future__ import annotations


def synthetic_curves(seed_shift: float, in_sample: float | None = None) -> list[dict]:
    """Synthetic pruning.jsonl rows: two score orders, the reverse order and two random ones.

    Without ``in_sample`` the rows have no ``fit`` (one curve per order, as hand-made rows or a
    file from before cross-fitting). With it they are the ``crossfit`` rows followed by
    ``in_sample`` copies whose accuracy at half the heads is ``in_sample`` higher (the in-sample
    advantage)."""
    fr = [0.0, 0.5, 1.0]
    tops = {"I_pre": 0.9, "Urel": 0.7, "I_post_reverse": 0.4, "random_0": 0.6, "random_1": 0.5}
    kinds = {"I_pre": "score", "Urel": "score", "I_post_reverse": "reverse"}

    def rows(shift: float) -> list[dict]:
        return [
            {
                "order": o,
                "kind": kinds.get(o, "random"),
                "step": j,
                "fraction": f,
                "acc": (0.8 if f == 0 else top + shift if f == 0.5 else 0.3),
                "loss": 1.0 + f,
            }
            for o, top in tops.items()
            for j, f in enumerate(fr)
        ]

    if in_sample is None:
        return rows(seed_shift)
    return [{**r, "fit": "crossfit"} for r in rows(seed_shift)] + [
        {**r, "fit": "in_sample"} for r in rows(seed_shift + in_sample)
    ]
