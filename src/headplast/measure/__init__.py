"""Measuring: per-head importance by gate ablation, gate gradients and Fisher, weight updates,
functional change, pruning curves, the shared theta0 sweep, the per-head join (heads.csv), and
the stage runner the rules call.
"""
