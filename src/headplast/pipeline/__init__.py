"""Workflow glue: config validation and canonical params, code fingerprints for reruns, and the
preamble every workflow script calls.
"""
