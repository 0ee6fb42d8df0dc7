"""Hydra configuration: resolvers, composition and validation (runs before any worker starts)."""
