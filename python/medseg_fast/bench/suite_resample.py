"""Benchmark suite ``resample``: image and label-map resampling vs nnU-Net, scipy, SimpleITK, torch.

Cases (CT of 100 x 256 x 256 voxels at 2.5 x 0.7 x 0.7 mm resampled to 1 mm isotropic, the
geometry of the issue's targets; a real head CT cropped to that size when the benchmark data are
present, otherwise a synthetic volume):

* ``ct order3 separate-z``: nnU-Net's default image path (skimage cubic per slice, nearest along z,
  per channel; rebuilt in ``medseg_fast.reference.resample.nnunet_resample_data_or_seg``) vs ours
  with the same options. scipy ``zoom`` (order 3) and SimpleITK ``Resample`` (B-spline) resample
  jointly in 3-D, i.e. a different (slower, non-separate) operation; they are listed for scale.
* ``ct order1``: trilinear, no separate z: torch ``interpolate(mode="trilinear")``, skimage,
  scipy ``zoom`` and SimpleITK linear compute the same function (SimpleITK up to its
  physical-space convention).
* ``labels 14 classes``: ``resample_labels`` vs nnU-Net's per-class loop (batchgenerators
  ``resize_segmentation``, order 1) and vs torch one-hot + ``interpolate`` + argmax.

Every implementation's output is checked against ours before timing (max relative error or
agreement fraction in the note). CPU runs use 2 threads for ours and torch.
"""

from __future__ import annotations

import numpy as np

from .harness import Row, measure, peak_extra_memory, rows_for_case, sync_for

NAME = "resample"
DESCRIPTION = "resample / resample_labels vs nnU-Net (skimage), scipy zoom, SimpleITK, torch interpolate"

SPACING = (2.5, 0.7, 0.7)
NEW_SPACING = (1.0, 1.0, 1.0)
SHAPE = (100, 256, 256)
THREADS = 2


def _ct_volume() -> tuple[np.ndarray, str]:
    from .data import load_benchmark_volume

    loaded = load_benchmark_volume("ct_head_invesalius_hu.nii.gz")
    if loaded is not None and all(n >= m for n, m in zip(loaded[0].shape, SHAPE)):
        a = loaded[0]
        z0 = (a.shape[0] - SHAPE[0]) // 2
        return np.ascontiguousarray(a[z0: z0 + SHAPE[0], : SHAPE[1], : SHAPE[2]]).astype(np.float32), "head CT"
    rng = np.random.default_rng(0)
    from scipy import ndimage as ndi

    return (ndi.gaussian_filter(rng.normal(size=SHAPE), 3) * 3000).astype(np.float32), "synthetic"


def _label_volume(num_classes: int = 14) -> tuple[np.ndarray, str]:
    """A spatially coherent label map with num_classes classes in the CT geometry."""
    from ..resampling import resample
    from .data import load_benchmark_volume

    loaded = load_benchmark_volume("aal116_colin27_1mm.nii.gz")
    if loaded is not None:
        atlas = loaded[0]
        values = np.unique(atlas)
        fg = values[values != 0]
        lut = np.zeros(int(values.max()) + 1, np.uint8)
        lut[fg] = 1 + (np.arange(len(fg)) * (num_classes - 1)) // len(fg)
        labels = lut[atlas]
        source = "AAL atlas, 14 groups"
    else:
        from scipy import ndimage as ndi

        rng = np.random.default_rng(1)
        fields = ndi.gaussian_filter(rng.normal(size=(num_classes, 40, 60, 60)), (0, 3, 4, 4))
        labels = np.argmax(fields, 0).astype(np.uint8)
        source = "synthetic"
    return resample(labels, SHAPE, order=0), source


def _rel_err(a, b, scale) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(scale, 1e-30))


def _sitk_resample(x: np.ndarray, spacing, new_shape, interpolator):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(x)
    img.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    # Output grid with pixel centres aligned to the input's (align_corners=False convention).
    in_size = np.array(list(reversed(x.shape)), dtype=np.float64)
    out_size = np.array(list(reversed(new_shape)), dtype=np.float64)
    out_spacing = np.array(list(reversed(spacing))) * in_size / out_size
    origin = -0.5 * np.array(list(reversed(spacing))) + 0.5 * out_spacing
    f = sitk.ResampleImageFilter()
    f.SetSize([int(v) for v in out_size])
    f.SetOutputSpacing(tuple(float(v) for v in out_spacing))
    f.SetOutputOrigin(tuple(float(v) for v in origin))
    f.SetInterpolator(interpolator)
    f.SetNumberOfThreads(THREADS)
    return lambda: sitk.GetArrayViewFromImage(f.Execute(img))


def run(device: str = "cpu", quick: bool = False) -> list[Row]:
    import torch

    from .. import _config
    from ..reference import resample as ref
    from ..resampling import resample, resample_labels

    torch.set_num_threads(THREADS)
    _config.set_num_threads(THREADS)
    sync = sync_for(device)
    warmup, repeats = (0, 1) if quick else (1, 5)
    rows: list[Row] = []
    ct, ct_source = _ct_volume()
    new_shape = ref.new_shape_for_spacing(ct.shape, SPACING, NEW_SPACING)
    voxels = int(np.prod(new_shape))
    scale = float(np.abs(ct).max())

    if device == "cuda":
        xt = torch.from_numpy(ct).cuda()
        ours = resample(xt, new_shape, order=1)
        peer = torch.nn.functional.interpolate(xt[None, None], size=new_shape, mode="trilinear", align_corners=False)[0, 0]
        err = _rel_err(ours.cpu(), peer.cpu(), scale)
        impls = {
            "medseg_fast": lambda: resample(xt, new_shape, order=1),
            "torch interpolate": lambda: torch.nn.functional.interpolate(
                xt[None, None], size=new_shape, mode="trilinear", align_corners=False),
        }
        t = measure(impls, warmup=2, repeats=10, sync=sync)
        mem = {k: peak_extra_memory(v, "cuda") for k, v in impls.items()}
        rows += rows_for_case(NAME, "ct order1 (cuda)", t, ours="medseg_fast", voxels=voxels, memory=mem,
                              notes={"torch interpolate": f"max rel err vs ours {err:.1e}"})
        o3 = {
            "medseg_fast": lambda: resample(xt, spacing=SPACING, new_spacing=NEW_SPACING, order=3),
        }
        t = measure(o3, warmup=2, repeats=10, sync=sync)
        rows += rows_for_case(NAME, "ct order3 separate-z (cuda)", t, ours="medseg_fast", voxels=voxels)
        labels, _ = _label_volume()
        lt = torch.from_numpy(labels).cuda()

        def torch_onehot():
            onehot = torch.nn.functional.one_hot(lt.long(), 14).permute(3, 0, 1, 2)[None].float()
            return torch.argmax(torch.nn.functional.interpolate(onehot, size=new_shape, mode="trilinear",
                                                                align_corners=False)[0], 0).to(torch.uint8)

        agree = float((resample_labels(lt, new_shape) == torch_onehot()).float().mean())
        impls = {"medseg_fast": lambda: resample_labels(lt, new_shape),
                 "torch one-hot interpolate argmax": torch_onehot}
        t = measure(impls, warmup=2, repeats=10, sync=sync)
        mem = {k: peak_extra_memory(v, "cuda") for k, v in impls.items()}
        rows += rows_for_case(NAME, "labels 14 classes (cuda)", t, ours="medseg_fast", voxels=voxels, memory=mem,
                              notes={"torch one-hot interpolate argmax": f"agreement {agree:.6f}"})
        return rows

    import SimpleITK as sitk
    from scipy import ndimage as ndi
    from skimage.transform import resize

    zoom = [n / m for n, m in zip(new_shape, ct.shape)]

    # --- order 3 with separate z: nnU-Net's default image path
    ours3 = resample(ct, spacing=SPACING, new_spacing=NEW_SPACING, order=3)
    nnunet = ref.nnunet_resample_data_or_seg(ct[None], new_shape, axis=0, order=3)[0]
    notes = {"nnU-Net (skimage, separate z)": f"max rel err vs ours {_rel_err(ours3, nnunet, scale):.1e}",
             "scipy zoom order 3 (joint 3-D)": "different operation: cubic along z too",
             "SimpleITK BSpline (joint 3-D)": "different operation: cubic along z, no prefilter"}
    impls = {
        "medseg_fast": lambda: resample(ct, spacing=SPACING, new_spacing=NEW_SPACING, order=3),
        "nnU-Net (skimage, separate z)": lambda: ref.nnunet_resample_data_or_seg(ct[None], new_shape, axis=0, order=3),
        "scipy zoom order 3 (joint 3-D)": lambda: ndi.zoom(ct, zoom, order=3, mode="nearest", grid_mode=True),
        "SimpleITK BSpline (joint 3-D)": _sitk_resample(ct, SPACING, new_shape, sitk.sitkBSpline),
    }
    t = measure(impls, warmup=warmup, repeats=repeats)
    mem = {k: peak_extra_memory(v) for k, v in impls.items() if k in ("medseg_fast", "nnU-Net (skimage, separate z)")}
    rows += rows_for_case(NAME, f"ct order3 separate-z {ct.shape}->{new_shape} ({ct_source})", t, ours="medseg_fast",
                          voxels=voxels, memory=mem, notes=notes)

    # --- order 1, no separate z
    ours1 = resample(ct, new_shape, order=1)
    xt = torch.from_numpy(ct)[None, None]
    torch_out = torch.nn.functional.interpolate(xt, size=new_shape, mode="trilinear", align_corners=False)[0, 0].numpy()
    sk = resize(ct, new_shape, 1, mode="edge", anti_aliasing=False)
    sp = ndi.zoom(ct, zoom, order=1, mode="nearest", grid_mode=True)
    it = _sitk_resample(ct, SPACING, new_shape, sitk.sitkLinear)()
    notes = {
        "torch interpolate trilinear": f"max rel err vs ours {_rel_err(ours1, torch_out, scale):.1e}",
        "skimage resize order 1": f"max rel err vs ours {_rel_err(ours1, sk, scale):.1e}",
        "scipy zoom order 1": f"max rel err vs ours {_rel_err(ours1, sp, scale):.1e}",
        # SimpleITK pads outside the image with 0 where ours clamps to the edge: compare inside a 1-voxel border
        "SimpleITK linear": "max rel err vs ours, 1-voxel border excluded (SimpleITK pads with 0 there), "
                            f"{_rel_err(ours1[1:-1, 1:-1, 1:-1], it[1:-1, 1:-1, 1:-1], scale):.1e}",
    }
    impls = {
        "medseg_fast": lambda: resample(ct, new_shape, order=1),
        "torch interpolate trilinear": lambda: torch.nn.functional.interpolate(
            xt, size=new_shape, mode="trilinear", align_corners=False),
        "skimage resize order 1": lambda: resize(ct, new_shape, 1, mode="edge", anti_aliasing=False),
        "scipy zoom order 1": lambda: ndi.zoom(ct, zoom, order=1, mode="nearest", grid_mode=True),
        "SimpleITK linear": _sitk_resample(ct, SPACING, new_shape, sitk.sitkLinear),
    }
    t = measure(impls, warmup=warmup, repeats=repeats)
    mem = {k: peak_extra_memory(impls[k]) for k in ("medseg_fast", "torch interpolate trilinear")}
    rows += rows_for_case(NAME, f"ct order1 {ct.shape}->{new_shape} ({ct_source})", t, ours="medseg_fast",
                          voxels=voxels, memory=mem, notes=notes)

    # --- label maps, 14 classes
    labels, lab_source = _label_volume()
    ours_l = resample_labels(labels, new_shape, num_classes=14)
    nn_l = ref.nnunet_resize_segmentation(labels, new_shape, order=1)
    lt = torch.from_numpy(labels)

    def torch_onehot():
        onehot = torch.nn.functional.one_hot(lt.long(), 14).permute(3, 0, 1, 2)[None].float()
        out = torch.nn.functional.interpolate(onehot, size=new_shape, mode="trilinear", align_corners=False)
        return torch.argmax(out[0], 0).to(torch.uint8)

    th = torch_onehot().numpy()
    notes = {
        "medseg_fast": f"input {labels.nbytes / 2**20:.0f} MiB, output {ours_l.nbytes / 2**20:.0f} MiB",
        "nnU-Net per-class loop (order 1)": f"agreement {np.mean(ours_l == nn_l):.5f} (0.5 threshold vs argmax)",
        "torch one-hot interpolate argmax": f"agreement {np.mean(ours_l == th):.6f}",
    }
    impls = {
        "medseg_fast": lambda: resample_labels(labels, new_shape, num_classes=14),
        "nnU-Net per-class loop (order 1)": lambda: ref.nnunet_resize_segmentation(labels, new_shape, order=1),
        "torch one-hot interpolate argmax": torch_onehot,
    }
    t = measure(impls, warmup=warmup, repeats=max(1, repeats - 2))
    mem = {k: peak_extra_memory(v) for k, v in impls.items()}
    rows += rows_for_case(NAME, f"labels 14 classes {labels.shape}->{new_shape} ({lab_source})", t,
                          ours="medseg_fast", voxels=voxels, memory=mem, notes=notes)
    return rows
