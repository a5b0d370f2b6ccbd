"""Losses suite: fused Dice + focal (medseg_fast) vs MONAI, forward and forward+backward.

Peers as pipelines call them: ``monai.losses.DiceFocalLoss(to_onehot_y=True, softmax=True)`` (its
focal term is sigmoid-based, so ours runs with ``focal_activation="sigmoid"``: the same loss) and
``DiceLoss(softmax=True, to_onehot_y=True) + FocalLoss(use_softmax=True, to_onehot_y=True)`` against
our default softmax focal term. Integer targets (B, 1, *spatial). Peak extra memory is measured
around forward+backward with the gradient kept alive (the gradient itself, 1x the logits, is
included). Correctness (value and gradient) is checked before timing.
"""

from __future__ import annotations

import gc

NAME = "losses"
DESCRIPTION = "fused DiceFocalLoss (forward, forward+backward, peak memory) vs MONAI"


def _cases(device: str, quick: bool):
    if device == "cuda":
        shape = (2, 4, 64, 64, 64) if quick else (2, 4, 128, 128, 128)
        import torch

        return [(shape, torch.float32), (shape, torch.bfloat16)]
    import torch

    return [((2, 4, 48, 48, 48) if quick else (2, 4, 96, 96, 96), torch.float32)]


def run(device: str = "cpu", quick: bool = False):
    import monai
    import torch

    from ..losses import DiceFocalLoss
    from .harness import measure, peak_extra_memory, rows_for_case, sync_for

    sync = sync_for(device)
    repeats = 3 if quick else 7
    timed = []   # (case, impls, timings, note): every timing first, with the default allocator settings
    for shape, dtype in _cases(device, quick):
        gen = torch.Generator().manual_seed(0)
        B, K, *sp = shape
        x = (2.0 * torch.randn(shape, generator=gen)).to(device=device, dtype=dtype).requires_grad_(True)
        y = torch.randint(0, K, (B, 1, *sp), generator=gen).to(device)
        voxels = B * int(torch.tensor(sp).prod())
        dname = str(dtype).replace("torch.", "")

        pairs = {
            "sigmoid focal (MONAI DiceFocalLoss)": (
                DiceFocalLoss(focal_activation="sigmoid"),
                monai.losses.DiceFocalLoss(to_onehot_y=True, softmax=True),
            ),
            "softmax focal (MONAI DiceLoss + FocalLoss(use_softmax))": (
                DiceFocalLoss(),
                _sum(monai.losses.DiceLoss(softmax=True, to_onehot_y=True),
                     monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True)),
            ),
        }
        for label, (ours, peer) in pairs.items():
            impl_names = {"medseg_fast fused": ours, "monai": peer}

            def fwd_bwd(fn, x=x, y=y):
                def go():
                    x.grad = None
                    loss = fn(x, y)
                    loss.backward()
                    return x.grad
                return go

            def fwd(fn, x=x, y=y):
                def go():
                    with torch.no_grad():
                        return fn(x, y)
                return go

            # correctness first: value and gradient against the peer (float32 logits)
            if dtype == torch.float32:
                vals, grads = [], []
                for fn in impl_names.values():
                    x.grad = None
                    loss = fn(x, y)
                    loss.backward()
                    vals.append(float(loss.detach()))
                    grads.append(x.grad.detach().double().clone())
                rel = abs(vals[0] - vals[1]) / abs(vals[1])
                grel = float((grads[0] - grads[1]).abs().max() / grads[1].abs().max())
                if rel > 1e-5 or grel > 1e-4:
                    raise AssertionError(f"{label}: fused differs from MONAI (value rel {rel:.2e}, grad rel {grel:.2e})")
                note = f"vs MONAI: value rel err {rel:.1e}, grad max rel err {grel:.1e}"
                if device == "cpu":
                    from .._config import config

                    note += f"; CPU path {config()['cpu_loss_simd']}"
            else:
                note = "16-bit logits"
            x.grad = None

            case = f"{label} {dname} {tuple(shape)} fwd+bwd"
            impls = {name: fwd_bwd(fn) for name, fn in impl_names.items()}
            timings = measure(impls, warmup=1, repeats=repeats, sync=sync)
            x.grad = None
            timed.append((case, impls, timings, note, voxels, x))

            case = f"{label} {dname} {tuple(shape)} forward"
            impls = {name: fwd(fn) for name, fn in impl_names.items()}
            timings = measure(impls, warmup=1, repeats=repeats, sync=sync)
            timed.append((case, impls, timings, "", voxels, x))

    # Then peak memory. On the CPU it is read from RSS, which needs freed blocks returned to the OS.
    trim = _release_freed_memory if device == "cpu" else (lambda: None)
    rows = []
    for case, impls, timings, note, voxels, x in timed:
        memory = {}
        for name, fn in impls.items():
            x.grad = None   # the new gradient counts as extra memory
            gc.collect()
            trim()
            memory[name] = peak_extra_memory(fn, device)
        x.grad = None
        rows += rows_for_case(NAME, case, timings, ours="medseg_fast fused", voxels=voxels, memory=memory,
                              notes={"medseg_fast fused": note} if note else None)
    return rows


def _release_freed_memory() -> None:
    """Make glibc return freed large blocks to the OS at once, so RSS shows each call's peak.

    By default glibc raises its mmap threshold after the first large free, after which freed
    temporaries stay resident and an RSS-based peak of later calls reads ~0 for every impl.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 20)
    libc.mallopt(m_trim_threshold, 1 << 20)
    libc.malloc_trim(0)


def _sum(a, b):
    def loss(x, y):
        return a(x, y) + b(x, y)
    return loss
