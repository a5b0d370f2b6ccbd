"""Sliding-window inference with a real 3-D U-Net (issue 17): does the network run as fast inside
the loop as alone, and is the whole prediction faster than nnU-Net's and MONAI's?

Networks: our `medseg_fast.models.UNet` and, when dynamic-network-architectures is installed,
nnU-Net's `PlainConvUNet`, both small enough for a 2-core CPU. Two kinds of case:

* **network inside the loop vs alone**: every network call made by the sliding window is timed
  where it happens; the same number of calls on fresh tensors of the same shape is timed alone, in
  the same process, alternating. The row's time is the sum of the network calls; the note gives
  the ratio (target <= 1.05) and the stitching beyond them (the whole call minus its network calls).
  nnU-Net's own loop is measured the same way;
* **end to end** (nnU-Net's `PlainConvUNet`, ours when it is absent): `medseg_fast.nnunet.nnUNetPredictor`
  vs nnU-Net's stock predictor (`predict_sliding_window_return_logits`, same network, same window
  positions and Gaussian),
  with and without mirroring, and MONAI's `sliding_window_inference` without mirroring. The note
  gives the largest logit difference to ours, relative to the logits' range (nnU-Net accumulates
  in float16).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from .harness import Row, Timing, measure, rows_for_case, sync_for

NAME = "predictor"
DESCRIPTION = "sliding window with a real 3-D U-Net: network inside our loop vs alone; end to end vs nnU-Net, MONAI"


class _TimedNetwork:
    """Calls `net` and adds up the seconds spent in it (synchronised on CUDA)."""

    def __init__(self, net, sync):
        self.net, self.sync, self.seconds, self.shapes = net, sync, 0.0, []

    def __call__(self, x):
        self.sync()
        start = time.perf_counter()
        out = self.net(x)
        self.sync()
        self.seconds += time.perf_counter() - start
        self.shapes.append(tuple(x.shape))
        return out


class _TimedModule:
    """A torch Module face for `_TimedNetwork` (nnU-Net calls ``.to``, ``.eval`` and the module)."""

    def __new__(cls, timed):
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = timed.net

            def forward(self, x):
                return timed(x)

        return Wrapper()


def _networks(quick: bool, classes: int):
    import torch

    from ..models import UNet

    channels = (4, 8, 16, 32) if quick else (16, 32, 64, 128)
    torch.manual_seed(0)
    nets = {"UNet (ours)": UNet(3, 1, classes, channels=channels, blocks=2, norm="instance").eval()}
    try:
        from dynamic_network_architectures.architectures.unet import PlainConvUNet
    except ImportError:
        return nets
    torch.manual_seed(0)
    stages = len(channels)
    nets["PlainConvUNet (nnU-Net)"] = PlainConvUNet(
        input_channels=1, n_stages=stages, features_per_stage=list(channels), conv_op=torch.nn.Conv3d,
        kernel_sizes=[[3, 3, 3]] * stages, strides=[[1, 1, 1]] + [[2, 2, 2]] * (stages - 1),
        n_conv_per_stage=[2] * stages, num_classes=classes, n_conv_per_stage_decoder=[2] * (stages - 1),
        conv_bias=True, norm_op=torch.nn.InstanceNorm3d, norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True}).eval()
    return nets


def _stock_predictor(net, patch, mirroring: bool, device):
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                        perform_everything_on_device=device.type == "cuda", device=device, allow_tqdm=False)
    _configure(p, net, patch, torch)
    return p


def _our_predictor(net, patch, mirroring: bool, device, batch_size: int | None = None):
    import torch

    from ..nnunet import nnUNetPredictor

    p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                        perform_everything_on_device=device.type == "cuda", device=device, allow_tqdm=False,
                        batch_size=batch_size)
    _configure(p, net, patch, torch)
    return p


def _configure(p, net, patch, torch):
    # What predict_sliding_window_return_logits reads (manual_initialization needs plans files).
    p.network = net
    p.configuration_manager = SimpleNamespace(patch_size=list(patch))
    p.label_manager = SimpleNamespace(num_segmentation_heads=_out_channels(net, patch, torch))
    p.allowed_mirroring_axes = (0, 1, 2)


def _out_channels(net, patch, torch) -> int:
    device = next(net.parameters()).device
    with torch.no_grad():
        return int(net(torch.zeros((1, 1, *patch), device=device)).shape[1])


def run(device: str = "cpu", quick: bool = False) -> list[Row]:
    import torch

    from ..sliding_window import sliding_window_inference

    sync = sync_for(device)
    dev = torch.device(device)
    size, patch = (48, (32, 32, 32)) if quick else (96, (64, 64, 64))
    classes, batch_size, repeats = 3, 2, (2 if quick else 3)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, size, size, size), generator=gen).to(dev)
    voxels = size**3
    rows: list[Row] = []
    try:
        import nnunetv2  # noqa: F401
        have_nnunet = True
    except ImportError:
        have_nnunet = False

    nets = _networks(quick, classes)
    for net_name, net in nets.items():
        net = net.to(dev)
        shape = f"1x1x{size}^3 patch {patch[0]}^3 overlap 0.5 gaussian, {classes} classes, {net_name}"

        # --- the network inside the loop vs the same calls alone
        ours_timed = _TimedNetwork(net, sync)
        stock_timed = _TimedNetwork(net, sync)
        stock = _stock_predictor(_TimedModule(stock_timed), patch, False, dev) if have_nnunet else None
        whole = {"ours": [], "nnunet": []}

        def ours_loop():
            ours_timed.seconds, ours_timed.shapes = 0.0, []
            start = time.perf_counter()
            with torch.no_grad():
                sliding_window_inference(x, ours_timed, patch, overlap=0.5, batch_size=batch_size, mode="gaussian",
                                         sigma_scale=0.125, positions="nnunet")
            whole["ours"].append(time.perf_counter() - start)

        def stock_loop():
            stock_timed.seconds, stock_timed.shapes = 0.0, []
            start = time.perf_counter()
            stock.predict_sliding_window_return_logits(x[0])
            whole["nnunet"].append(time.perf_counter() - start)

        ours_loop()
        calls = list(ours_timed.shapes)
        inputs = [torch.rand(s, generator=gen).to(dev) for s in sorted(set(calls))]
        by_shape = {tuple(t.shape): t for t in inputs}

        def alone(shapes):
            with torch.no_grad():
                for s in shapes:
                    net(by_shape[s])
            sync()

        stock_calls: list = []
        if stock is not None:
            stock_loop()
            stock_calls = list(stock_timed.shapes)
            by_shape.update({s: torch.rand(s, generator=gen).to(dev) for s in set(stock_calls) - set(by_shape)})

        inside: dict[str, list[float]] = {"ours inside": [], "ours alone": [], "nnunet inside": [], "nnunet alone": []}

        def timed(fn, key, counter=None):
            def call():
                if counter is None:
                    start = time.perf_counter()
                    fn()
                    inside[key].append(time.perf_counter() - start)
                else:
                    fn()
                    inside[key].append(counter.seconds)
            return call

        impls = {"network inside our loop": timed(ours_loop, "ours inside", ours_timed),
                 "same calls alone": timed(lambda: alone(calls), "ours alone")}
        if stock is not None:
            impls["network inside nnU-Net's loop"] = timed(stock_loop, "nnunet inside", stock_timed)
            impls["nnU-Net's calls alone"] = timed(lambda: alone(stock_calls), "nnunet alone")
        measure(impls, warmup=1, repeats=repeats, sync=sync)
        timings = {}
        for name, key in [("network inside our loop", "ours inside"), ("same calls alone", "ours alone"),
                          ("network inside nnU-Net's loop", "nnunet inside"), ("nnU-Net's calls alone", "nnunet alone")]:
            if inside[key]:
                timings[name] = Timing(inside[key][1:])   # the warm-up round dropped
        ratio = timings["network inside our loop"].median / timings["same calls alone"].median
        stitch = _median(whole["ours"][-repeats:]) - timings["network inside our loop"].median
        notes = {"network inside our loop": f"{len(calls)} calls of batch {batch_size}; inside/alone {ratio:.3f} "
                                            f"(target <= 1.05); stitching beyond the network {stitch * 1e3:.0f} ms",
                 "same calls alone": "the same calls on fresh tensors, outside any loop"}
        if "network inside nnU-Net's loop" in timings:
            r2 = timings["network inside nnU-Net's loop"].median / timings["nnU-Net's calls alone"].median
            s2 = _median(whole["nnunet"][-repeats:]) - timings["network inside nnU-Net's loop"].median
            notes["network inside nnU-Net's loop"] = (f"{len(stock_calls)} calls of batch 1; inside/alone {r2:.3f}; "
                                                      f"stitching beyond the network {s2 * 1e3:.0f} ms")
            notes["nnU-Net's calls alone"] = "nnU-Net's calls on fresh tensors, outside any loop"
        rows += rows_for_case(NAME, f"{shape}: network time inside vs alone", timings, ours="network inside our loop",
                              voxels=voxels, notes=notes)

        # --- end to end, with and without mirroring: nnU-Net's own network (ours when it is absent)
        if stock is None or (net_name.startswith("UNet") and len(nets) > 1):
            continue
        for mirroring in (False, True):
            ours_p = _our_predictor(net, patch, mirroring, dev)   # its default: 1 window per call on the CPU
            stock_p = _stock_predictor(net, patch, mirroring, dev)
            impls = {"medseg_fast nnUNetPredictor": lambda p=ours_p: p.predict_sliding_window_return_logits(x[0]),
                     "nnU-Net nnUNetPredictor": lambda p=stock_p: p.predict_sliding_window_return_logits(x[0])}
            if not mirroring:
                from monai.inferers import sliding_window_inference as monai_swi

                def monai_run():
                    with torch.no_grad():
                        return monai_swi(x, patch, batch_size, net, overlap=0.5, mode="gaussian", sigma_scale=0.125)[0]
                impls["monai sliding_window_inference"] = monai_run
            reference = impls["medseg_fast nnUNetPredictor"]().float()
            span = float(reference.max() - reference.min()) or 1.0
            notes = {}
            for name, fn in impls.items():
                if name.startswith("medseg_fast"):
                    continue
                diff = (fn().float() - reference).abs().flatten() / span
                notes[name] = (f"logit difference to ours, relative to the range: max {float(diff.max()):.1e}, "
                               f"99.9th percentile {float(torch.quantile(diff[::max(1, diff.numel() // 2**22)], 0.999)):.1e}")
                if name.startswith("nnU-Net"):
                    notes[name] += " (nnU-Net accumulates in float16: its Gaussian weight underflows at corners)"
                elif name.startswith("monai"):
                    notes[name] += " (MONAI's Gaussian has no nnU-Net floor: other weights in the overlaps)"
            del reference
            timings = measure(impls, warmup=1, repeats=2 if mirroring else repeats, sync=sync)
            case = f"{shape}: end to end, {'mirroring 8 flips' if mirroring else 'no mirroring'}"
            rows += rows_for_case(NAME, case, timings, ours="medseg_fast nnUNetPredictor", voxels=voxels, notes=notes)
    return rows


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")
