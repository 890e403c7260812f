"""Training: theta0 of each start (the seed's random head, the probed head), fine-tuning to theta1,
importing existing fine-tunes, data-parallel runs and the degenerate-run check.
"""
