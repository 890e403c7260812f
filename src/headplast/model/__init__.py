"""Model access: where each model family keeps its attention (the adapter table), the exact head
gates, precision, and loading checkpoints from a hub id or a folder. Nothing here knows a task
or a measure.
"""
