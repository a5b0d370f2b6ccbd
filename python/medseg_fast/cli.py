"""The ``medseg-fast`` command: ``bench`` today; ``demo``, ``train``, ``predict``, ``evaluate`` later."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["main"]


class UsageError(Exception):
    """A one-line user error: printed without a traceback, exit status 2."""


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
    if args.threads:
        medseg_fast.set_num_threads(args.threads)
    rows = bench.run_suites(names, device=args.device, quick=args.quick)
    tag = args.tag or f"{'-'.join(names) if args.suite else 'all'}-{args.device}{'-quick' if args.quick else ''}"
    json_path, md_path = bench.write_results(rows, args.out, args.device, tag)
    print(f"results written to {md_path} and {json_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from medseg_fast import __version__

    parser = argparse.ArgumentParser(prog="medseg-fast", description="Fast kernels for 3D medical image segmentation.")
    parser.add_argument("--version", action="version", version=f"medseg-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    b = sub.add_parser("bench", help="compare every kernel with the established peers on this machine",
                       description="Time ours and the peers in one process (alternating, median after warm-up) "
                                   "and write a markdown + JSON table.")
    b.add_argument("--suite", action="append", help="suite to run (repeatable; default: all)")
    b.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    b.add_argument("--quick", action="store_true", help="small inputs and few repeats (a smoke run)")
    b.add_argument("--threads", type=int, default=None, help="CPU threads for our kernels")
    b.add_argument("--out", default="bench-results", help="output folder (default: ./bench-results)")
    b.add_argument("--tag", default=None, help="file name stem of the result files")
    b.set_defaults(func=_bench)
    sub.add_parser("config", help="print what was built").set_defaults(func=_config)
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
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"medseg-fast: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medseg-fast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
