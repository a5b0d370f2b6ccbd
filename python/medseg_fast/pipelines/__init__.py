"""End-to-end pipelines: ``train``, ``predict``, ``evaluate`` and the built-in ``demo``.

Submodules are imported on use (``from medseg_fast.pipelines import train``) so that ``import medseg_fast``
stays light.
"""
