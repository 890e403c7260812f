"""Synthetic pruning.jsonl rows, shared by the pruning and degenerate-run tests."""

from __future__ import annotations


def synthetic_curves(seed_shift: float) -> list[dict]:
    """Synthetic pruning.jsonl rows: two score orders, the reverse order and two random ones."""
    fr = [0.0, 0.5, 1.0]
    tops = {"I_pre": 0.9, "Urel": 0.7, "I_post_reverse": 0.4, "random_0": 0.6, "random_1": 0.5}
    kinds = {"I_pre": "score", "Urel": "score", "I_post_reverse": "reverse"}
    return [
        {
            "order": o,
            "kind": kinds.get(o, "random"),
            "step": j,
            "fraction": f,
            "acc": (0.8 if f == 0 else top + seed_shift if f == 0.5 else 0.3),
            "loss": 1.0 + f,
        }
        for o, top in tops.items()
        for j, f in enumerate(fr)
    ]
