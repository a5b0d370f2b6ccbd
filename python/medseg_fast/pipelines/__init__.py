"""End-to-end pipelines: ``train``, ``predict``, ``evaluate`` and the built-in ``demo``.

Layers, imported only downwards: the kernels (``medseg_fast.resample``, ``components``, ``metrics``,
``sliding_window``, ``losses``) < ``io`` and ``models`` < ``data`` < ``pipelines`` < ``cli``. The pipelines call
the kernels' public functions directly; checkpoints are read and written by :mod:`.checkpoint`, the training
loss comes from :mod:`medseg_fast.losses.factory`.

Submodules are imported on use (``from medseg_fast.pipelines import train``) so that ``import medseg_fast``
stays light.
"""
