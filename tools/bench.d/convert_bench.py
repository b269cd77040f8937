#!/usr/bin/env python3
"""Convert part of tools/bench: .pth → .safetensors, wconv as a whole process vs PyTorch in-process.

  convert_bench.py wconv BIN SRC DST N   runs `BIN convert SRC DST` N times (DST removed before each),
                                         wall time of each whole process and its peak RSS (wait4)
  convert_bench.py torch SRC DST N       torch.load(weights_only=True, mmap=True) + safetensors'
                                         save_file N times in this process, timed without the
                                         interpreter start-up and imports; peak RSS of the process
Prints one JSON line: min and median seconds, peak_rss bytes.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def wconv(bin_, src, dst, n):
    times, peak = [], 0
    for _ in range(n):
        if os.path.exists(dst):
            os.unlink(dst)
        t = time.perf_counter()
        p = subprocess.Popen([bin_, "convert", src, dst], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        times.append(time.perf_counter() - t)
        if status != 0:
            raise SystemExit(f"wconv convert exited with status {status}")
        peak = max(peak, usage.ru_maxrss * 1024)
    return times, peak


def torch_(src, dst, n):
    import torch
    from safetensors.torch import save_file
    times = []
    for _ in range(n):
        if os.path.exists(dst):
            os.unlink(dst)
        t = time.perf_counter()
        sd = torch.load(src, weights_only=True, mmap=True)
        save_file(sd, dst)
        times.append(time.perf_counter() - t)
        del sd
    with open("/proc/self/status") as f:
        peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
    return times, peak


if __name__ == "__main__":
    if sys.argv[1] == "wconv":
        times, peak = wconv(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        times, peak = torch_(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    print(json.dumps({"who": sys.argv[1], "min": min(times), "median": statistics.median(times), "peak_rss": peak}))
