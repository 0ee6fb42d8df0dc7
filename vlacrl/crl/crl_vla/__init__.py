"""CRL-VLA (arXiv 2602.03445) as a CRL method plugin: ``crl.method=crl_vla`` (docs/methods/crl_vla.md).

Modules: :mod:`.gcvf` (goal-conditioned critics and the features they read), :mod:`.losses` (pure loss terms),
:mod:`.buffer` (the old-task buffer B_old), :mod:`.samples` (sample-set files), :mod:`.method` (the plugin).
"""

from vlacrl.crl.crl_vla.method import CRLVLA

__all__ = ["CRLVLA"]
