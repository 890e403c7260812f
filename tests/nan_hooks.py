"""Faults planted in a BERT model by forward hooks, for the non-finite checks (test_faults runs
them through the measuring scripts, test_measures through the sweep and the gradients)."""

from __future__ import annotations


def nan_when_ablated(model, layer: int, head: int):
    """Forward hook: the attention output of `layer` turns NaN for every example whose `head`
    is switched off (its gated columns all zero). Finite with all gates 1."""
    dense = model.bert.encoder.layer[layer].attention.output.dense
    d = model.config.hidden_size // model.config.num_attention_heads

    def hook(module, args, out):
        dead = (args[0][..., head * d : (head + 1) * d] == 0).flatten(1).all(1)
        if bool(dead.any()):
            out = out.clone()
            out[dead] = float("nan")
        return out

    return dense.register_forward_hook(hook)


def nan_gate_gradient(model, layer: int, head: int):
    """The gradient reaching `head`'s gated columns of `layer`'s output projection is NaN."""
    dense = model.bert.encoder.layer[layer].attention.output.dense
    d = model.config.hidden_size // model.config.num_attention_heads

    def poison(g):
        g = g.clone()
        g[..., head * d : (head + 1) * d] = float("nan")
        return g

    def hook(module, args, out):
        if args[0].requires_grad:
            args[0].register_hook(poison)

    return dense.register_forward_hook(hook)
