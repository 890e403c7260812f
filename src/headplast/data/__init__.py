"""Data: the tasks' canonical splits (GLUE, local files, generated NLI), the eval subset, and
tokenised length-bucketed batches.
"""
