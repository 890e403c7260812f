"""Training: theta0 of each start (the seed's random classifier, the probed classifier),
fine-tuning to theta1, importing existing fine-tunes, data-parallel training and the
degenerate-run flag.
"""
