"""Metric loggers (console, TensorBoard, WandB), phase timers and continual-learning metrics."""
