"""The probe world: a small, fast, in-process kinematic simulator with LIBERO's env contract.

Made for learning you can see on a CPU: an untrained policy succeeds in a fraction of the episodes (GRPO
groups are mixed), a trained one in all of them. See docs/probe.md.
"""
