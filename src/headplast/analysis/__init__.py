"""Analysis (no torch): rank statistics, reliabilities and noise ceilings, summaries across seeds,
starts and tasks, pruning-curve areas, and the figures.
"""
