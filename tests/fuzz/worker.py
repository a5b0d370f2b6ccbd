"""Fuzz worker: runs the hypothesis cases of some targets in this process (see cases.py).

Run by tests/test_fuzz.py in a subprocess, so that a segfault or abort here is reported there as
a failure naming the case instead of killing pytest. Every case is appended to the log (one JSON
line, written with one ``write`` call before the case runs) so the last line names the case that
was running when the process died.

    python tests/fuzz/worker.py --log LOG [--profile ci|long] [--targets a,b]
    python tests/fuzz/worker.py --replay '<case json>'     # rerun one logged case, traceback on failure
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# No example database (settings below) and hypothesis' constants cache kept out of the checkout:
# a fuzz run writes nothing under .hypothesis/.
if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
    import tempfile

    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(tempfile.gettempdir(), "medseg-fuzz-hypothesis")

import cases as C  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Examples per target. ci: the whole suite in about a minute on a 2-core machine; long:
# >= 10^4 cases over the 29 targets.
PROFILES = {"ci": 120, "long": 400}


class Log:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, **event) -> None:
        os.write(self.fd, (json.dumps(event, default=repr) + "\n").encode())


def run_target(name: str, examples: int, log: Log) -> dict:
    count = {"cases": 0, "skipped_known": 0, "outcomes": {}}
    last = {}

    @seed(zlib.crc32(name.encode()))
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False, print_blob=False,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink])
    @given(st.data())
    def fuzz(data):
        args = C.TARGETS[name].gen(data.draw)
        # One JSON round trip: the case that runs is exactly the one logged (tuples become lists).
        text = C.case_json({"target": name, "args": args})
        case = json.loads(text)
        bug = C.known_bug(case)
        if bug is not None:
            count["skipped_known"] += 1
            from hypothesis import reject

            reject()
        log.write(event="case", target=name, case=text)
        last["case"] = text
        count["cases"] += 1
        outcome = C.run_case(case)
        count["outcomes"][outcome] = count["outcomes"].get(outcome, 0) + 1

    C.MESSAGES.clear()
    start = time.perf_counter()
    try:
        fuzz()
        status, error = "pass", ""
    except BaseException as exc:  # noqa: BLE001 - every failure is reported with its case
        if isinstance(exc, KeyboardInterrupt):
            raise
        status, error = "fail", "".join(traceback.format_exception(exc))[-6000:]
    return {"status": status, "error": error, "last_case": last.get("case"), "seconds": time.perf_counter() - start,
            "top_rejections": C.MESSAGES.most_common(4), **count}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--log")
    p.add_argument("--profile", default=os.environ.get("MEDSEG_FUZZ_PROFILE", "ci"), choices=sorted(PROFILES))
    p.add_argument("--targets", default="")
    p.add_argument("--replay")
    a = p.parse_args(argv)
    import warnings

    warnings.simplefilter("error")          # as in the test suite
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.*")
    import torch

    # Tensors here are tiny: torch's own spinning thread pool would only compete with the kernels.
    torch.set_num_threads(1)
    if a.replay:
        case = json.loads(a.replay)
        C.run_case(case)
        print("case passed")
        return 0
    log = Log(a.log)
    names = [n for n in a.targets.split(",") if n] or list(C.TARGETS)
    for name in names:
        log.write(event="start", target=name)
        result = run_target(name, PROFILES[a.profile], log)
        log.write(event="done", target=name, **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
