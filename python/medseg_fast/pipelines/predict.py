"""Prediction: read, preprocess as in training, sliding-window inference (optional mirroring), resample the
class probabilities back to the input grid, optional largest-component postprocessing per class, and write
the label map with the input's geometry. Folders are processed case by case, each output written
atomically and verified; existing outputs are skipped only when they read back whole with the input's shape
(a broken one, e.g. from a full disk, is predicted again), so an interrupted run resumes (Ctrl-C leaves no
partial file; temporary files of a killed run are removed).
Under ``torchrun`` each rank takes every ``WORLD_SIZE``-th case."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import keep_largest_per_class, resample_argmax, sliding_window_inference
from .. import _progress
from .._progress import Progress
from ..data.fingerprint import require_finite
from ..data.preprocess import preprocess_image
from ..data.sampling import pad_to
from ..io import (
    IMAGE_SUFFIXES,
    DataError,
    Meta,
    check_image_file,
    clean_stale_temp_files,
    is_image_path,
    is_temp_name,
    read_image,
    read_source_series,
    strip_suffix,
    write_dicom_seg,
    write_image,
)
from ..models import build_model
from .checkpoint import load_checkpoint

__all__ = ["Predictor", "predict", "group_inputs"]

log = logging.getLogger(__name__)


class Predictor:
    """A trained model ready to segment images in their original geometry.

    Parameters
    ----------
    checkpoint : str or path-like or dict
        A checkpoint from :func:`medseg_fast.pipelines.train.train` (or the loaded dict).
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    mirror : bool
        Test-time augmentation: average over mirrored inputs along every spatial axis.
    overlap : float
        Sliding-window overlap.
    postprocess : bool
        Keep only the largest connected component of each class.
    """

    def __init__(self, checkpoint: Any, *, device: str = "auto", mirror: bool = False, overlap: float = 0.5,
                 batch_size: int = 4, postprocess: bool = True) -> None:
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise DataError("--device cuda: no CUDA GPU is available on this machine")
        self.device = torch.device(device)
        self.plan = ckpt["plan"]
        self.patch = [int(p) for p in ckpt["patch_size"]]
        self.model = build_model(ckpt["model_config"])
        self.model.load_state_dict(ckpt["model"])
        self.model.to(self.device).eval()
        self.channels_last = len(self.patch) == 3
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last_3d)
        self.mirror, self.overlap, self.batch_size, self.postprocess = mirror, overlap, batch_size, postprocess
        self.num_channels = len(self.plan["channels"])
        self.classes = [int(c) for c in self.plan["classes"]]
        self.timings: dict[str, float] = {"preprocess": 0.0, "inference": 0.0, "export": 0.0, "postprocess": 0.0}

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            with torch.autocast("cuda", dtype=dtype):
                return self.model(x)
        return self.model(x)

    @torch.no_grad()
    def predict_array(self, image: np.ndarray, meta: Meta, *, postprocess: bool | None = None) -> np.ndarray:
        """Segment ``image`` ((C, *spatial) or (*spatial) for one channel) of geometry ``meta``; returns a uint8
        label map of the input's spatial shape."""
        if image.ndim == len(self.patch):
            image = image[None]
        if image.shape[0] != self.num_channels:
            raise DataError(f"model expects {self.num_channels} channel(s), got {image.shape[0]}")
        t0 = time.perf_counter()
        data, _, props = preprocess_image(image, meta, self.plan)
        shape = data.shape[1:]
        data, pad = pad_to(data, self.patch)
        x = torch.from_numpy(np.ascontiguousarray(data))[None]
        t1 = time.perf_counter()
        mirror_axes = tuple(self.plan.get("mirror_axes", range(len(self.patch)))) if self.mirror else None
        inner = tuple(slice(p, p + n) for p, n in zip(pad, shape))
        same_grid = tuple(shape) == tuple(props["cropped_shape"])
        # Same grid: the sliding window's own argmax (labels straight from the blended logits, no float volume
        # on the original grid); otherwise softmax at the network grid and the fused resample + argmax, so
        # memory past the network-grid probabilities is the label map plus per-thread tiles (never C x original).
        out = sliding_window_inference(x, self._net, self.patch, overlap=self.overlap, batch_size=self.batch_size,
                                       positions="nnunet", mirror_axes=mirror_axes, device=self.device,
                                       output_device=self.device, argmax=same_grid, progress=_window_bar())
        if same_grid:
            cropped = out[0][inner]
        else:
            probs = torch.softmax(out[0][(slice(None), *inner)].float(), 0)
            del out
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # honest stage timings
        t2 = time.perf_counter()
        if not same_grid:
            # back to the input grid on the inference device (GPU when there is one): only labels come back
            cropped = resample_argmax(probs, props["cropped_shape"], spacing=self.plan["target_spacing"],
                                      new_spacing=meta.spacing, order=1)
            del probs
        labels = np.zeros(props["original_shape"], dtype=np.uint8)
        box = tuple(slice(a, b) for a, b in props["bbox"])
        labels[box] = cropped.to(torch.uint8).cpu().numpy()
        del cropped
        t3 = time.perf_counter()
        if self.postprocess if postprocess is None else postprocess:
            labels = keep_largest_per_class(labels, self.classes)  # full connectivity: 26 in 3-D, 8 in 2-D
        t4 = time.perf_counter()
        for k, dt in zip(("preprocess", "inference", "export", "postprocess"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            self.timings[k] += dt
        return labels

    def predict_files(self, images: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                      postprocess: bool | None = None) -> None:
        """Read the channel files of one case, segment, and write ``output`` atomically with their geometry."""
        chans, meta = [], None
        for p in images:
            a, m = read_image(p)
            require_finite(a, p)
            if meta is not None and (a.shape != chans[0].shape or not m.same_geometry(meta)):
                raise DataError(f"{p}: geometry differs from {images[0]}")
            chans.append(a)
            meta = meta or m
        if len(chans[0].shape) != len(self.patch):
            raise DataError(f"{images[0]}: a {len(chans[0].shape)}-D image, but the model is {len(self.patch)}-D")
        labels = self.predict_array(np.stack(chans), meta, postprocess=postprocess)
        t0 = time.perf_counter()
        write_image(output, labels, meta)
        self.timings["export"] += time.perf_counter() - t0


def group_inputs(folder: Path, num_channels: int) -> dict[str, list[Path]]:
    """Map case id -> channel files: ``CASE_0000.nii.gz`` ... as nnU-Net, or any single image per case for
    one-channel models."""
    files = sorted(p for p in folder.iterdir() if is_image_path(p) and not p.name.startswith(".")
                   and not is_temp_name(p.name))
    cases: dict[str, dict[int, Path]] = {}
    for p in files:
        stem = strip_suffix(p.name)
        m = re.fullmatch(r"(.+)_(\d{4})", stem)
        if m:
            cases.setdefault(m.group(1), {})[int(m.group(2))] = p
        elif num_channels == 1:
            cases.setdefault(stem, {})[0] = p
        else:
            raise DataError(f"{p}: multi-channel input files must be named CASE_0000, CASE_0001, ...")
    out = {}
    for cid, ch in cases.items():
        missing = [c for c in range(num_channels) if c not in ch]
        if missing:
            raise DataError(f"{folder}: case {cid} lacks channel file(s) {[f'{cid}_{c:04d}' for c in missing]}")
        out[cid] = [ch[c] for c in range(num_channels)]
    if not out:
        raise DataError(f"{folder}: no images found (suffixes {', '.join(IMAGE_SUFFIXES)})")
    return out


def predict(model: str | os.PathLike, input: str | os.PathLike, output: str | os.PathLike, *,
            device: str = "auto", mirror: bool = False, overlap: float = 0.5, postprocess: bool = True,
            overwrite: bool = False, progress: Callable[[str], None] | None = None,
            output_format: str | None = None, classes: dict[int, Any] | None = None,
            dicom_seg_type: str = "binary", classes_source: str | None = None) -> dict[str, Any]:
    """Segment a file (to a file) or a folder of cases (to a folder, ``CASE.nii.gz`` per case).

    Existing outputs that read back whole are skipped unless ``overwrite``. Returns ``{"written": [...], "skipped": [...],
    "timings": {...}}``. ``output_format="dicom-seg"``: ``input`` is a DICOM series folder and ``output`` a
    DICOM SEG file (``.dcm``, or a folder for ``CASE.dcm``) referencing it, one segment per class named (and
    coded) by ``classes`` (value -> name or spec, :func:`medseg_fast.io.write_dicom_seg`; default: the class
    names the model was trained with); ``dicom_seg_type`` ``"binary"`` or ``"labelmap"``.
    """
    t_start = time.time()
    inp, out = Path(input), Path(output)
    if not inp.exists():
        raise DataError(f"{inp}: no such file or folder")
    if output_format not in (None, "dicom-seg"):
        raise ValueError(f"output_format must be None or 'dicom-seg', got {output_format!r}")
    if output_format == "dicom-seg":
        return _predict_dicom_seg(model, inp, out, classes, classes_source or "the given classes", dicom_seg_type,
                                  overwrite, dict(device=device, mirror=mirror, overlap=overlap, postprocess=postprocess))
    predictor = Predictor(model, device=device, mirror=mirror, overlap=overlap, postprocess=postprocess)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if inp.is_file() or (inp.is_dir() and not any(is_image_path(p) for p in inp.iterdir())):
        # one case: an image file, or a DICOM series folder
        if out.exists() and out.is_dir():
            out = out / (strip_suffix(inp.name).removesuffix("_0000") + ".nii.gz")
        elif not is_image_path(out):
            raise DataError(f"{out}: output must be an image file ({', '.join(IMAGE_SUFFIXES)}) or a folder")
        jobs = {strip_suffix(inp.name): ([inp], out)}
    else:
        if out.exists() and not out.is_dir():
            raise DataError(f"{out}: input is a folder, so the output must be a folder too")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
        groups = group_inputs(inp, predictor.num_channels)
        jobs = {cid: (files, out / f"{cid}.nii.gz") for cid, files in groups.items()}
    # temporary outputs of a killed run: removed when their writer is gone (another rank's are kept)
    clean_stale_temp_files(out if out.is_dir() else out.parent, older_than=t_start)
    written, skipped = [], []
    mine = [job for i, job in enumerate(sorted(jobs.items())) if i % world == rank]
    with Progress("predict", len(mine)) as bar:
        for cid, (files, target) in mine:
            if target.exists() and not overwrite and _output_ok(target, files[0]):
                skipped.append(str(target))
            else:
                predictor.predict_files(files, target)
                written.append(str(target))
                if progress:
                    progress(cid)
            bar.update(1, item=cid)
    return {"written": written, "skipped": skipped, "timings": dict(predictor.timings)}


def _output_ok(target: Path, source: Path) -> bool:
    """An existing output counts as done only if it reads back whole (header, every voxel byte) with the
    spatial shape of its input; a broken one (e.g. from a full disk) is predicted again."""
    try:
        shape = check_image_file(target)
        expected = check_image_file(source) if shape is not None else None
    except (DataError, OSError) as exc:
        log.warning("%s; predicting it again", exc)
        return False
    if shape is None:
        try:
            read_image(target)
        except (DataError, OSError) as exc:
            log.warning("%s; predicting it again", exc)
            return False
        return True
    if expected is not None and tuple(shape) != tuple(expected):
        log.warning("%s: shape %s differs from its input %s %s; predicting it again", target, shape, source,
                    expected)
        return False
    return True


def _predict_dicom_seg(model: Any, inp: Path, out: Path, classes: dict[int, Any] | None, source: str, seg_type: str,
                       overwrite: bool, options: dict[str, Any]) -> dict[str, Any]:
    """One DICOM series folder -> one DICOM SEG; the series and the classes are checked before inference."""
    if inp.is_file() or any(is_image_path(p) for p in inp.iterdir()):
        raise DataError(f"{inp}: --format dicom-seg needs a DICOM series folder as input, got "
                        f"{'a file' if inp.is_file() else 'a folder of image files'}")
    if out.is_dir():
        out = out / f"{inp.name}.dcm"
    elif out.suffix.lower() != ".dcm":
        raise DataError(f"{out}: a DICOM SEG output must be a .dcm file or an existing folder")
    if out.exists() and not overwrite:
        return {"written": [], "skipped": [str(out)], "timings": {}}
    read_source_series(inp)  # bad series (not DICOM, uneven slice spacing, ...): fail before the model runs
    predictor = Predictor(model, **options)
    spec = classes if classes is not None else {int(k): v for k, v in predictor.plan.get("labels", {}).items()
                                                if int(k) != 0}
    missing = [c for c in predictor.classes if c not in spec]
    if missing:
        raise DataError(f"{source if classes is not None else model}: class value(s) {missing} of the model are "
                        "missing from its labels; every segment of a DICOM SEG needs a name")
    image, meta = read_image(inp)
    require_finite(image, inp)
    labels = predictor.predict_array(image, meta)
    t0 = time.perf_counter()
    write_dicom_seg(labels, inp, {c: spec[c] for c in predictor.classes}, out, meta=meta,
                    segmentation_type=seg_type)
    predictor.timings["export"] += time.perf_counter() - t0
    return {"written": [str(out)], "skipped": [], "timings": dict(predictor.timings)}


def _window_bar() -> bool:
    """A per-batch-of-windows bar inside a case: on a terminal with tqdm only (in a log, one line per
    case is what `Progress` prints)."""
    if not (_progress.enabled() and _progress._isatty(sys.stderr)):
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True
