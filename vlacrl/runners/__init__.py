"""Training loop, continual sequence runner, evaluation, checkpoints."""
