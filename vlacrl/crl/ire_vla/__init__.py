"""iRe-VLA (arXiv 2501.16664) as a CRL method plugin: ``crl.method=ire_vla`` (docs/methods/ire_vla.md).

Modules: :mod:`.params` (stage-wise parameter selection), :mod:`.buffer` (D_RL, the successful episodes),
:mod:`.stage2` (supervised consolidation step), :mod:`.method` (the plugin).
"""

from vlacrl.crl.ire_vla.method import IReVLA

__all__ = ["IReVLA"]
