"""The built-in demo: synthetic CT phantoms -> preprocess -> train a small 3-D U-Net on the CPU -> predict the
held-out cases -> keep the largest component per organ -> evaluate. Writes ``metrics.json`` (``mean_dice``),
the checkpoint, NIfTI predictions and overlay PNGs under one folder and prints the time of each stage."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..data.phantom import PhantomConfig, make_dataset
from ..data.preprocess import preprocess_dataset
from ..io import write_text_atomic
from .checkpoint import CHECKPOINT_LAST
from .evaluate import _json_safe, evaluate
from .predict import Predictor
from .train import TrainConfig, train

__all__ = ["DemoConfig", "run_demo", "format_table"]

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Sizes of the demo. The defaults reach Dice >= 0.9 on the held-out phantoms in a few CPU minutes;
    :meth:`tiny` is a seconds-long smoke run of every stage (its Dice is meaningless)."""

    n_train: int = 8
    n_test: int = 3
    steps: int = 600
    batch_size: int = 2
    patch_size: tuple[int, int, int] = (24, 64, 64)
    channels: tuple[int, ...] = (8, 16, 32, 64)
    lr: float = 5e-3
    seed: int = 0
    threads: int | None = None
    mirror: bool = False
    phantom: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def tiny(cls) -> DemoConfig:
        return cls(n_train=2, n_test=1, steps=3, batch_size=1, patch_size=(8, 16, 16), channels=(4, 8),
                   phantom={"fov_mm": (60.0, 120.0, 140.0), "spacing": (6.0, 6.0, 6.0)})


def format_table(rows: list[tuple[str, float, float, str]]) -> str:
    """Plain-text table of (stage, wall seconds, CPU seconds of this process, note)."""
    w = max(len(r[0]) for r in [*rows, ("total", 0.0, 0.0, "")])
    lines = [f"{'stage':<{w}}  {'seconds':>8}  {'cpu s':>8}  note", f"{'-' * w}  {'-' * 8}  {'-' * 8}  ----"]
    lines += [f"{name:<{w}}  {sec:8.1f}  {cpu:8.1f}  {note}" for name, sec, cpu, note in rows]
    lines.append(f"{'total':<{w}}  {sum(r[1] for r in rows):8.1f}  {sum(r[2] for r in rows):8.1f}")
    return "\n".join(lines)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_demo(out: str | os.PathLike, config: DemoConfig | None = None, *,
             echo: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Run every stage into ``out`` and return the content of ``out/metrics.json``."""
    cfg = config or DemoConfig()
    say = echo or (lambda s: None)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    stages: list[tuple[str, float, float, str]] = []
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    def stage(name: str, note: str, t0: tuple[float, float]) -> None:
        now = _now()
        stages.append((name, now[0] - t0[0], now[1] - t0[1], note))
        say(f"[demo] {name}: {stages[-1][1]:.1f} s  {note}")

    try:
        t = _now()
        ds = make_dataset(root / "dataset", cfg.n_train, cfg.n_test, seed=cfg.seed,
                          config=PhantomConfig(**cfg.phantom))
        stage("generate", f"{cfg.n_train} training + {cfg.n_test} held-out phantom CTs", t)

        t = _now()
        plan = preprocess_dataset(ds, root / "preprocessed")
        spacing = ", ".join(f"{s:.2f}" for s in plan["target_spacing"])
        stage("preprocess", f"target spacing ({spacing}) mm, CT normalization", t)

        t = _now()
        model_dir = root / "model"
        if (model_dir / CHECKPOINT_LAST).exists():
            (model_dir / CHECKPOINT_LAST).unlink()  # the demo always trains from scratch
        result = train(TrainConfig(
            preprocessed=str(root / "preprocessed"), out=str(model_dir), channels=cfg.channels,
            patch_size=cfg.patch_size, batch_size=cfg.batch_size, steps=cfg.steps, lr=cfg.lr, seed=cfg.seed,
            device="cpu", checkpoint_every=max(cfg.steps // 4, 1), log_every=max(cfg.steps // 20, 1), resume=False,
            progress=echo is not None and sys.stderr.isatty()),
            on_log=None if (echo is None or sys.stderr.isatty()) else
            lambda e: say(f"[demo]   step {e['step']}/{cfg.steps}  loss {e['loss']:.3f}  {e['seconds']:.0f} s")
            if e["step"] % max(cfg.steps // 5, 1) == 0 else None)
        nparam = sum(p.numel() for p in torch.load(result["checkpoint"], weights_only=False)["model"].values())
        stage("train", f"{cfg.steps} steps, batch {cfg.batch_size}, patch {tuple(cfg.patch_size)}, "
                       f"{nparam / 1e6:.2f} M parameters, final loss {result['history'][-1]['loss']:.3f}", t)

        predictor = Predictor(result["checkpoint"], device="cpu", mirror=cfg.mirror, postprocess=True)
        pred_dir = root / "predictions"
        pred_dir.mkdir(exist_ok=True)
        t = _now()
        test_images = sorted((ds / "imagesTs").glob("*_0000.nii.gz"))
        for img in test_images:
            cid = img.name[: -len("_0000.nii.gz")]
            predictor.predict_files([img], pred_dir / f"{cid}.nii.gz")
        now = _now()
        post = predictor.timings["postprocess"]
        stages.append(("predict", now[0] - t[0] - post, now[1] - t[1] - post, f"{len(test_images)} held-out cases, sliding window, "
                       f"resampled back to the input grid (preprocess {predictor.timings['preprocess']:.1f} s, "
                       f"inference {predictor.timings['inference']:.1f} s, export {predictor.timings['export']:.1f} s)"))
        say(f"[demo] predict: {stages[-1][1]:.1f} s")
        stages.append(("postprocess", post, post, "largest connected component per organ"))
        say(f"[demo] postprocess: {post:.1f} s")

        t = _now()
        labels = {int(v): k for k, v in json.loads((ds / "dataset.json").read_text())["labels"].items()}
        summary = evaluate(pred_dir, ds / "labelsTs", root / "evaluation", labels=labels, images=ds / "imagesTs")
        stage("evaluate", "Dice, IoU, HD95, ASSD, surface Dice; overlays", t)
    finally:
        torch.set_num_threads(threads_before)

    metrics = {
        "mean_dice": summary["mean_dice"],
        "dice_per_class": {name: v["dice"]["mean"] for name, v in summary["per_class"].items()},
        "mean": summary["mean"],
        "num_test_cases": summary["num_cases"],
        "timings_s": {name: round(sec, 3) for name, sec, _, _ in stages},
        "total_s": round(sum(s[1] for s in stages), 3),
        "cpu_s": {name: round(cpu, 3) for name, _, cpu, _ in stages},
        "load_average_at_start": load_before,
        "checkpoint": str(Path(result["checkpoint"]).relative_to(root)),
        "predictions": sorted(str(p.relative_to(root)) for p in pred_dir.glob("*.nii.gz")),
        "overlays": sorted(str(p.relative_to(root)) for p in (root / "evaluation" / "overlays").glob("*.png")),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": cfg.threads or torch.get_num_threads(), "cpu_count": os.cpu_count()},
    }
    write_text_atomic(root / "metrics.json", json.dumps(_json_safe(metrics), indent=1))
    say("")
    say(format_table(stages))
    say(f"\nmean Dice on {summary['num_cases']} held-out cases: {summary['mean_dice']:.3f}  "
        + "  ".join(f"{k} {v:.3f}" for k, v in metrics["dice_per_class"].items()))
    say(f"written: {root / 'metrics.json'}, {metrics['checkpoint']}, predictions/, evaluation/overlays/")
    return metrics
