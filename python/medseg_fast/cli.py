"""The ``medseg-fast`` command: ``demo``, ``preprocess``, ``train``, ``predict``, ``evaluate``, ``bench``, ``config``.

Bad input (missing, truncated or corrupt files, mismatched geometry, unknown labels, unwritable outputs, a
full disk, bad arguments) gives a one-line error naming the file or argument and the problem, exit status
2, no traceback. An unexpected internal error also prints one line (exit status 1); set
``MEDSEG_FAST_TRACEBACK=1`` to see its traceback. Ctrl-C exits with 130 and leaves no half-written output
(every output file is written under a temporary name, verified, and renamed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


class UsageError(Exception):
    """A one-line user error: printed without a traceback, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``medseg-fast: error: ...``, exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        cmd = self.prog.removeprefix("medseg-fast").strip()
        print(f"medseg-fast: error: {cmd + ': ' if cmd else ''}{_one_line(message)} (see {self.prog} --help)",
              file=sys.stderr)
        raise SystemExit(2)


def _bench(args: argparse.Namespace) -> int:
    import medseg_fast
    from medseg_fast import bench

    known = bench.available_suites()
    names = args.suite or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown suite(s) {unknown}; available: {known}")
    if args.device == "cuda":
        try:
            import torch
        except ImportError:
            raise UsageError("--device cuda needs torch with CUDA") from None
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA GPU is available on this machine")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        medseg_fast.set_num_threads(args.threads)
    if args.data is not None and not Path(args.data).expanduser().is_dir():
        raise UsageError(f"--data must name an existing folder of benchmark volumes, got {args.data!r}")
    rows = bench.run_suites(names, device=args.device, quick=args.quick, data=args.data)
    tag = args.tag or f"{'-'.join(names) if args.suite else 'all'}-{args.device}{'-quick' if args.quick else ''}"
    json_path, md_path = bench.write_results(rows, args.out, args.device, tag)
    chart = md_path.with_suffix(".png")
    print(f"results written to {md_path}, {json_path}" + (f" and {chart}" if chart.exists() else ""))
    return 0


def _threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        import torch

        import medseg_fast

        torch.set_num_threads(args.threads)
        medseg_fast.set_num_threads(args.threads)


def _positive(name: str, value: int | float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be > 0 (and finite), got {value}")


def _demo(args: argparse.Namespace) -> int:
    from medseg_fast.pipelines.demo import DemoConfig, run_demo

    _threads(args)
    cfg = DemoConfig.tiny() if args.tiny else DemoConfig()
    for name in ("steps", "n_train", "n_test", "seed"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    _positive("--steps", cfg.steps)
    _positive("--train-cases", cfg.n_train)
    _positive("--test-cases", cfg.n_test)
    cfg.threads = args.threads
    cfg.mirror = args.mirror
    metrics = run_demo(args.out, cfg)
    return 0 if metrics["mean_dice"] == metrics["mean_dice"] else 1


def _preprocess(args: argparse.Namespace) -> int:
    from medseg_fast.data.preprocess import preprocess_dataset

    _threads(args)
    if args.spacing is not None and (len(args.spacing) not in (2, 3)
                                     or not all(math.isfinite(v) and v > 0 for v in args.spacing)):
        raise UsageError(f"--spacing needs 2 or 3 positive values (array axis order), got {args.spacing}")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    plan = preprocess_dataset(args.dataset, args.out, rank=rank, world_size=world, target_spacing=args.spacing,
                              overwrite=args.overwrite)
    print(f"plan {plan['hash']}: target spacing {plan['target_spacing']} mm; cases in {Path(args.out) / 'cases'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from medseg_fast.pipelines.train import TrainConfig, train

    _threads(args)
    for name in ("--steps", "--batch-size", "--lr"):
        _positive(name, getattr(args, name[2:].replace("-", "_")))
    if args.patch_size is not None and (len(args.patch_size) not in (2, 3) or min(args.patch_size) < 1):
        raise UsageError(f"--patch-size needs 2 or 3 positive sizes, got {args.patch_size}")
    if args.channels is not None and min(args.channels) < 1:
        raise UsageError(f"--channels must be positive widths, got {args.channels}")
    if not 0 <= args.val_fraction < 1:
        raise UsageError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    cfg = TrainConfig(preprocessed=args.data, out=args.out, arch=args.arch, loss=args.loss, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, device=args.device,
                      seed=args.seed, resume=not args.no_resume, val_fraction=args.val_fraction,
                      val_every=args.val_every, progress=not (args.no_progress or args.quiet), amp=args.amp,
                      deep_supervision=not args.no_deep_supervision, upsample=args.upsample, norm=args.norm)
    if args.patch_size:
        cfg.patch_size = args.patch_size
    if args.channels:
        cfg.channels = args.channels
    result = train(cfg)
    if "checkpoint" in result:
        print(f"trained {result['steps']} steps in {result['seconds']:.1f} s; checkpoint {result['checkpoint']}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import json

    from medseg_fast.pipelines.predict import predict

    _threads(args)
    if not 0 <= args.overlap < 1:
        raise UsageError(f"--overlap must be in [0, 1), got {args.overlap}")
    classes = None
    if args.labels:
        from medseg_fast.data.dataset import load_dataset
        from medseg_fast.io._dicom_seg import segment_codes_from_dataset

        p = Path(args.labels)
        info = load_dataset(p.parent if p.name == "dataset.json" else p)
        raw = json.loads((info.root / "dataset.json").read_text())
        classes = segment_codes_from_dataset(info.labels, raw)
    fmt = None if args.format == "auto" else args.format
    if args.dicom_seg_type != "binary" and fmt != "dicom-seg":
        raise UsageError("--dicom-seg-type needs --format dicom-seg")
    res = predict(args.model, args.input, args.output, device=args.device, mirror=args.mirror,
                  overlap=args.overlap, postprocess=not args.no_postprocess, overwrite=args.overwrite,
                  progress=(lambda c: print(f"predicted {c}")) if args.verbose else None,
                  output_format=fmt, classes=classes, dicom_seg_type=args.dicom_seg_type,
                  classes_source=str(info.root / "dataset.json") if args.labels else None)
    t = res["timings"]
    print(f"wrote {len(res['written'])} file(s), skipped {len(res['skipped'])} existing; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from medseg_fast.pipelines.evaluate import evaluate

    _threads(args)
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise UsageError(f"--tolerance must be finite and > 0 mm, got {args.tolerance}")
    labels, source = None, None
    if args.labels:
        from medseg_fast.data.dataset import load_dataset

        p = Path(args.labels)
        info = load_dataset(p.parent if p.name == "dataset.json" else p)
        labels, source = info.labels, f"the labels of {info.root / 'dataset.json'}"
    if args.classes is not None:
        if min(args.classes) < 1 or len(set(args.classes)) != len(args.classes):
            raise UsageError(f"--classes must be distinct foreground values >= 1, got {args.classes}")
        if labels is not None:
            extra = sorted(set(args.classes) - set(labels))
            if extra:
                raise UsageError(f"--classes {extra} are not declared in {args.labels}")
            labels = {c: labels[c] for c in sorted(args.classes)}
        else:
            labels = {c: str(c) for c in sorted(args.classes)}
        source = f"--classes {sorted(args.classes)}"
    lesion_opts = _lesion_options(args)
    summary = evaluate(args.pred, args.gt, args.out, labels=labels, images=args.images, tolerance=args.tolerance,
                       overlays=not args.no_overlays, labels_source=source, lesion_wise=args.lesion_wise,
                       lesion_options=lesion_opts, report=not args.no_report)
    for name, v in summary["per_class"].items():
        print(f"{name:>16}: Dice {v['dice']['mean']:.4f} +- {v['dice']['std']:.4f}")
    print(f"mean Dice {summary['mean_dice']:.4f} over {summary['num_cases']} case(s); "
          f"{Path(args.out) / 'metrics.csv'}, {Path(args.out) / 'summary.json'}")
    del json
    return 0


def _lesion_options(args: argparse.Namespace) -> dict:
    """lesion_wise keyword arguments from the --lesion-* / --brats flags, checked before any case is read."""
    import numpy as np

    from medseg_fast.lesion import BRATS2023, lesion_wise

    # --brats: the challenge's own definition, HD95 on DeepMind surface elements included
    opts: dict = {**BRATS2023[args.brats], "convention": "deepmind"} if args.brats else {}
    for flag, key in (("lesion_match", "match"), ("iou_threshold", "iou_threshold"),
                      ("lesion_dilation", "dilation"), ("lesion_min_volume", "min_volume")):
        if getattr(args, flag) is not None:
            opts[key] = getattr(args, flag)
    try:
        lesion_wise(np.zeros((1, 1, 1), np.uint8), np.zeros((1, 1, 1), np.uint8), **opts)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"lesion-wise options: {exc}") from None
    if opts and not args.lesion_wise:
        raise UsageError("--lesion-match/--iou-threshold/--lesion-dilation/--lesion-min-volume/--brats need "
                         "--lesion-wise")
    return opts


def build_parser() -> argparse.ArgumentParser:
    from medseg_fast._version import __version__

    parser = _Parser(prog="medseg-fast", description="Fast kernels for 3D medical image segmentation.")
    parser.add_argument("--version", action="version", version=f"medseg-fast {__version__}")
    # on every subcommand: progress bars (one line per item when stderr is not a terminal) and logging
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    common.add_argument("--log-level", default="WARNING", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="logging level (default WARNING)")
    common.add_argument("--log-file", default=None, metavar="FILE", help="also write the log to FILE")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    b = sub.add_parser("bench", parents=[common], help="compare every kernel with the established peers on this machine",
                       description="Time ours and the peers in one process (alternating, median after warm-up) "
                                   "and write a markdown + JSON table.")
    from medseg_fast.bench import available_suites

    b.add_argument("--suite", action="append", metavar="NAME",
                   help=f"suite to run (repeatable; default: all): {', '.join(available_suites())}")
    b.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    b.add_argument("--quick", action="store_true", help="small inputs and few repeats (a smoke run)")
    b.add_argument("--threads", type=int, default=None, help="CPU threads for our kernels")
    b.add_argument("--out", default="bench-results", help="output folder (default: ./bench-results)")
    b.add_argument("--tag", default=None, help="file name stem of the result files")
    b.add_argument("--data", default=None, metavar="DIR",
                   help="folder of the real benchmark volumes (default: $MEDSEG_BENCH_DATA; without either, the "
                        "real-volume rows are skipped)")
    b.set_defaults(func=_bench)
    sub.add_parser("config", parents=[common], help="print what was built").set_defaults(func=_config)

    d = sub.add_parser("demo", parents=[common], help="synthetic CT -> train a 3-D U-Net on the CPU -> predict -> evaluate",
                       description="Generate a small synthetic abdominal CT dataset, train a small 3-D U-Net on "
                                   "the CPU, predict the held-out cases, keep the largest component per organ, "
                                   "evaluate, and write OUT/metrics.json (mean_dice), the checkpoint, NIfTI "
                                   "predictions and overlay PNGs. Prints the time of each stage.")
    d.add_argument("--out", default="medseg-demo", help="output folder (default: ./medseg-demo)")
    d.add_argument("--steps", type=int, default=None, help="training steps (default: the tuned demo setting)")
    d.add_argument("--train-cases", dest="n_train", type=int, default=None, help="phantom training cases")
    d.add_argument("--test-cases", dest="n_test", type=int, default=None, help="held-out phantom cases")
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    d.add_argument("--mirror", action="store_true", help="mirroring test-time augmentation")
    d.add_argument("--tiny", action="store_true", help="a seconds-long smoke run of every stage (Dice meaningless)")
    d.set_defaults(func=_demo)

    p = sub.add_parser("preprocess", parents=[common], help="fingerprint and preprocess a dataset (nnU-Net / MSD layout)",
                       description="Check the dataset (geometry, label values), compute its fingerprint and "
                                   "cache every training case resampled and normalized. Resumable; under "
                                   "torchrun each rank takes its share of the cases.")
    p.add_argument("--dataset", required=True, help="folder with dataset.json, imagesTr/, labelsTr/")
    p.add_argument("--out", required=True, help="cache folder (plans.json, cases/)")
    p.add_argument("--spacing", type=float, nargs="+", default=None, help="target spacing, array axis order (mm)")
    p.add_argument("--overwrite", action="store_true", help="rebuild a cache made with another plan")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=_preprocess)

    t = sub.add_parser("train", parents=[common], help="train a U-Net on a preprocessed folder (torchrun for several GPUs/nodes)",
                       description="Patch training with foreground oversampling, augmentation on the device, "
                                   "Dice+CE or Dice+focal loss with deep supervision, AMP on GPUs, checkpoints "
                                   "and resume (OUT/checkpoint_last.pt), log.csv/log.json. Launch with "
                                   "`torchrun --nproc_per_node N -m medseg_fast.cli train ...` for DDP.")
    t.add_argument("--data", required=True, help="preprocessed folder (from `medseg-fast preprocess`)")
    t.add_argument("--out", required=True, help="run folder for checkpoints and logs")
    t.add_argument("--arch", choices=("UNet", "AttentionUNet", "VNet"), default="UNet")
    t.add_argument("--channels", type=int, nargs="+", default=None, help="widths per level (default 16 32 64 128 256)")
    t.add_argument("--norm", choices=("instance", "batch", "group", "none"), default="instance")
    t.add_argument("--upsample", choices=("transpose", "nearest", "linear"), default="transpose")
    t.add_argument("--no-deep-supervision", action="store_true")
    t.add_argument("--loss", choices=("dice_ce", "dice_focal"), default="dice_ce")
    t.add_argument("--patch-size", type=int, nargs="+", default=None, help="patch shape (default: from the data)")
    t.add_argument("--batch-size", type=int, default=2, help="patches per step and process")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--val-fraction", type=float, default=0.0, help="cases held out for validation")
    t.add_argument("--val-every", type=int, default=0, help="validate every N steps (sliding window)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--amp", choices=("auto", "off"), default="auto", help="bf16/fp16 autocast on GPUs")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-resume", action="store_true", help="ignore OUT/checkpoint_last.pt")
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    t.add_argument("--threads", type=int, default=None)
    t.set_defaults(func=_train)

    r = sub.add_parser("predict", parents=[common], help="segment a file or a folder of cases with a trained checkpoint",
                       description="Read, preprocess, sliding-window inference, resample back to the input "
                                   "grid, keep the largest component per class, write with the input's geometry. "
                                   "Folders are resumable (existing outputs are skipped).")
    r.add_argument("--model", required=True, help="checkpoint (.pt) from `medseg-fast train`")
    r.add_argument("--input", required=True, help="image file, DICOM series folder, or folder of cases")
    r.add_argument("--output", required=True, help="output file (.nii.gz, .nrrd, .mha) or folder")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    r.add_argument("--mirror", action="store_true", help="mirroring test-time augmentation")
    r.add_argument("--overlap", type=float, default=0.5)
    r.add_argument("--no-postprocess", action="store_true", help="keep every connected component")
    r.add_argument("--overwrite", action="store_true", help="redo cases whose output exists")
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--format", choices=("auto", "dicom-seg"), default="auto",
                   help="output format: auto (from the output suffix) or dicom-seg (a DICOM SEG referencing the "
                        "input DICOM series folder; output .dcm or a folder)")
    r.add_argument("--labels", default=None, help="dataset.json (or its folder) naming the classes for the DICOM "
                   "SEG segments, with optional SNOMED-CT codes under \"snomed\" (default: the model's class names)")
    r.add_argument("--dicom-seg-type", choices=("binary", "labelmap"), default="binary",
                   help="binary (every SEG reader) or labelmap (DICOM 2024 label-map SEG, faster, fewer readers)")
    r.add_argument("-v", "--verbose", action="store_true")
    r.set_defaults(func=_predict)

    e = sub.add_parser("evaluate", parents=[common], help="per-case, per-class Dice, IoU, HD95, ASSD, surface Dice; overlays",
                       description="Compare predicted label maps with the ground truth (matched by file name; "
                                   "both must hold non-negative whole class values); "
                                   "write OUT/metrics.csv, OUT/summary.json (mean and std per class), "
                                   "OUT/overlays/*.png (three views with a legend) and OUT/report.html (one "
                                   "self-contained page: summary, sortable tables, overlays).")
    e.add_argument("--pred", required=True, help="predicted label map file or folder")
    e.add_argument("--gt", required=True, help="ground-truth label map file or folder")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--labels", default=None, help="dataset.json (or its folder) naming the classes; a value "
                   "not declared there in a prediction or ground truth is an error")
    e.add_argument("--classes", type=int, nargs="+", default=None,
                   help="foreground class values to evaluate (declared classes; default: the --labels classes, "
                        "else every non-zero value of each case)")
    e.add_argument("--images", default=None, help="image file or folder drawn under the overlays")
    e.add_argument("--tolerance", type=float, default=2.0, help="surface Dice tolerance (mm)")
    e.add_argument("--no-overlays", action="store_true", help="no OUT/overlays/*.png")
    e.add_argument("--no-report", action="store_true", help="no OUT/report.html")
    e.add_argument("--lesion-wise", action="store_true",
                   help="also score lesion by lesion (connected components): TP/FP/FN, F1, BraTS 2023 lesion-wise "
                        "Dice/HD95, panoptic quality; OUT/lesions.csv")
    e.add_argument("--lesion-match", choices=("overlap", "iou"), default=None,
                   help="matching rule: any overlap (BraTS 2023, default) or one-to-one IoU >= --iou-threshold")
    e.add_argument("--iou-threshold", type=float, default=None, help="IoU of a match for 'iou' and PQ (0.5)")
    e.add_argument("--lesion-dilation", type=int, default=None, metavar="N",
                   help="BraTS dilation iterations before matching (default 0)")
    e.add_argument("--lesion-min-volume", type=float, default=None, metavar="MM3",
                   help="lesions of at most this volume are not scored (default 0)")
    e.add_argument("--brats", choices=("GLI", "SSA", "MEN", "PED", "MET"), default=None,
                   help="BraTS 2023 settings of that sub-challenge (dilation, min volume, HD95 on DeepMind surface "
                        "elements; otherwise the lesion HD95 uses MONAI's voxel surfaces like the other metrics)")
    e.add_argument("--threads", type=int, default=None)
    e.set_defaults(func=_evaluate)
    return parser


def _config(args: argparse.Namespace) -> int:
    import medseg_fast

    medseg_fast.show_config()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from medseg_fast import _progress

    debug = os.environ.get("MEDSEG_FAST_TRACEBACK", "") not in ("", "0")
    try:
        restore_logging = _progress.setup_logging(args.log_level, args.log_file)
    except ValueError as exc:
        print(f"medseg-fast: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    _progress.enable(not args.quiet)
    try:
        return _run(args, debug)
    finally:
        _progress.enable(False)
        restore_logging()


def _run(args: argparse.Namespace, debug: bool) -> int:
    from medseg_fast.io import DataError

    try:
        return int(args.func(args) or 0)
    except (UsageError, DataError) as exc:
        print(f"medseg-fast: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # missing / unreadable / unwritable files: name the file, no traceback
        name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        text = exc.strerror or exc
        if name and str(text).startswith(name):
            name = ""
        print(f"medseg-fast: error: {name}{_one_line(text)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medseg-fast: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError) as exc:  # an argument the library rejected: its message names it
        if debug:
            raise
        print(f"medseg-fast: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        if debug:
            raise
        print(f"medseg-fast: error: out of memory running {args.command}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - never a traceback; a bug still gets exit 1 and its type
        if debug:
            raise
        print(f"medseg-fast: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(set MEDSEG_FAST_TRACEBACK=1 for the traceback)", file=sys.stderr)
        return 1


def _one_line(exc: object) -> str:
    text = " ".join(str(exc).split())
    return text[:500]


if __name__ == "__main__":
    sys.exit(main())
