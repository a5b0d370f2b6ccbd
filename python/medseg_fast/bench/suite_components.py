"""Connected components: ``label`` and postprocessing vs cc3d, scipy, SimpleITK and MONAI.

Every peer's result is checked against ours before timing (labels compared after renumbering
to raster order, which is ours and scipy's numbering); the check is reported in the note column.
"""

from __future__ import annotations

import numpy as np

from .data import load_benchmark_volume
from .harness import Row, measure, peak_extra_memory, rows_for_case, sync_for

NAME = "components"
DESCRIPTION = "3-D connected components (26-connectivity) and postprocessing vs cc3d, scipy, SimpleITK, MONAI"


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber 1..N in raster order of each label's first voxel (0 stays background)."""
    flat = np.asarray(labels).ravel()
    values, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    ranks = np.zeros(values.size, np.int64)
    order = [i for i in np.argsort(first) if values[i] != 0]
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks[inverse].reshape(np.shape(labels))


def _blobs(rng: np.random.Generator, shape, frac: float, sigma: float) -> np.ndarray:
    """Smooth random blobs covering about `frac` of the volume (organ-like shapes)."""
    import scipy.ndimage as ndi

    small = ndi.gaussian_filter(rng.standard_normal(tuple(s // 4 for s in shape)).astype(np.float32), sigma)
    field = ndi.zoom(small, 4, order=1)
    threshold = np.quantile(small, 1 - frac)
    return (field > threshold).astype(np.uint8)


def _cases(quick: bool):
    rng = np.random.default_rng(2026)
    big = (64, 128, 128) if quick else (256, 512, 512)
    noise = (48, 64, 64) if quick else (128, 256, 256)
    cases = [
        (f"sparse blobs 2% {'x'.join(map(str, big))}", _blobs(rng, big, 0.02, 2.0), "binary"),
        (f"dense blobs 40% {'x'.join(map(str, big))}", _blobs(rng, big, 0.40, 3.0), "binary"),
        (f"noise p=0.5 {'x'.join(map(str, noise))}", (rng.random(noise) < 0.5).astype(np.uint8), "binary"),
    ]
    bone = load_benchmark_volume("ct_head_invesalius_mask_bone_226_3071hu.nii.gz")
    if bone is not None:
        cases.append((f"head CT bone mask {'x'.join(map(str, bone[0].shape))}", (bone[0] > 0).astype(np.uint8), "binary"))
    aal = load_benchmark_volume("aal116_colin27_1mm.nii.gz")
    if aal is not None:
        cases.append((f"AAL116 atlas (multi-label) {'x'.join(map(str, aal[0].shape))}", aal[0], "multi"))
    return cases


def _check(ours, theirs, canonical: bool) -> str:
    a = np.asarray(ours)
    b = _canonical(theirs) if canonical else np.asarray(theirs)
    bad = int(np.count_nonzero(a != b))
    return "exact" if bad == 0 else f"MISMATCH {bad} voxels"


def _time_case(name: str, impls: dict, voxels: int, notes: dict, repeats: int, device: str) -> list[Row]:
    memory = {impl: peak_extra_memory(fn, device) for impl, fn in impls.items()}
    timings = measure(impls, warmup=1, repeats=repeats, sync=sync_for(device))
    return rows_for_case(NAME, name, timings, ours="medseg_fast", voxels=voxels, memory=memory, notes=notes)


def run(device: str, quick: bool) -> list[Row]:
    import cc3d
    import scipy.ndimage as ndi

    import medseg_fast as mf

    try:
        import SimpleITK as sitk
    except ImportError:  # optional peer
        sitk = None
    repeats = 3 if quick else 5
    structure = ndi.generate_binary_structure(3, 3)
    rows: list[Row] = []
    cases = _cases(quick)

    if device == "cuda":
        import torch

        try:
            import cupy
            import cupyx.scipy.ndimage as cndi
        except ImportError:
            cupy = None
        for name, x, kind in cases:
            if kind != "binary":
                continue
            t = torch.from_numpy(x).cuda()
            ours = mf.label(t).cpu().numpy()
            ref = ndi.label(x, structure)[0]
            impls = {"medseg_fast": lambda t=t: mf.label(t)}
            notes = {"medseg_fast": _check(ours, ref, False) + " vs scipy"}
            if cupy is not None:
                c = cupy.asarray(x)
                cs = cupy.asarray(structure)
                impls["cupyx.scipy.ndimage.label"] = lambda c=c, cs=cs: cndi.label(c, cs)
                notes["cupyx.scipy.ndimage.label"] = _check(ours, cndi.label(c, cs)[0].get(), False)
            rows += _time_case(f"label {name}", impls, x.size, notes, repeats, device)
        return rows

    for name, x, kind in cases:
        ours = mf.label(x)
        impls = {"medseg_fast": lambda x=x: mf.label(x)}
        notes = {}
        impls["cc3d"] = lambda x=x: cc3d.connected_components(x, connectivity=26)
        notes["cc3d"] = _check(ours, cc3d.connected_components(x, connectivity=26), True)
        if kind == "binary":
            impls["scipy"] = lambda x=x: ndi.label(x, structure)
            notes["scipy"] = _check(ours, ndi.label(x, structure)[0], False)
            if sitk is not None:
                def run_sitk(x=x):
                    return sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(x), True))

                impls["SimpleITK"] = run_sitk
                notes["SimpleITK"] = _check(ours, run_sitk(), True)
        rows += _time_case(f"label {name}", impls, x.size, notes, repeats, device)

    # largest_component vs cc3d.largest_k and MONAI KeepLargestConnectedComponent.
    for name, x, _kind in cases[:2]:
        ours = mf.largest_component(x)
        impls = {"medseg_fast": lambda x=x: mf.largest_component(x)}
        impls["cc3d.largest_k"] = lambda x=x: cc3d.largest_k(x, 1, connectivity=26)
        notes = {"cc3d.largest_k": _check(ours, cc3d.largest_k(x, 1, connectivity=26) > 0, False)}
        try:
            import torch
            from monai.transforms import KeepLargestConnectedComponent

            keep = KeepLargestConnectedComponent(applied_labels=[1], independent=True, connectivity=3)
            tx = torch.from_numpy(x[None])

            impls["MONAI KeepLargestCC"] = lambda keep=keep, tx=tx: keep(tx)
            notes["MONAI KeepLargestCC"] = _check(ours, np.asarray(keep(tx))[0], False)
        except ImportError:
            pass
        rows += _time_case(f"largest_component {name}", impls, x.size, notes, repeats, device)

    # remove_small_components vs cc3d.dust; fill_holes vs scipy.
    name, x, _ = cases[0]
    ours = mf.remove_small_components(x, 1000)
    impls = {"medseg_fast": lambda: mf.remove_small_components(x, 1000),
             "cc3d.dust": lambda: cc3d.dust(x, 1000, connectivity=26)}
    notes = {"cc3d.dust": _check(ours, cc3d.dust(x, 1000, connectivity=26), False)}
    rows += _time_case(f"remove_small_components(1000) {name}", impls, x.size, notes, repeats, device)

    for name, x, _kind in cases:
        if "bone" not in name and "dense" not in name:
            continue
        ours = mf.fill_holes(x)
        impls = {"medseg_fast": lambda x=x: mf.fill_holes(x), "scipy": lambda x=x: ndi.binary_fill_holes(x)}
        notes = {"scipy": _check(ours, ndi.binary_fill_holes(x), False)}
        rows += _time_case(f"fill_holes {name}", impls, x.size, notes, repeats, device)
    threads = mf.get_num_threads()
    for r in rows:
        if r.impl == "medseg_fast":
            r.note = (r.note + f" {threads} threads").strip()
    return rows
