"""Thin Ray actors over the pure modules: env, rollout and actor workers."""
