"""``python -m headplast.bench``: the CPU speed ratios (:mod:`headplast.bench.ratios`)."""

from headplast.bench.ratios import main

main()
