"""Continual-learning methods as plugins: one class per method, registered by name (``crl.method``)."""
