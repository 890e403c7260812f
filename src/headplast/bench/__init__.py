"""Benchmarks: ``python -m headplast.bench`` (speed ratios on the CPU) and ``python -m
headplast.bench.gpu`` (the measuring stage and fine-tuning at the reference size on a GPU).
"""
