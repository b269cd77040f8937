#!/usr/bin/env python3
"""Interop: what wconv writes, the real `safetensors` package reads back with equal tensors and metadata.

Run by tools/test as:  WCONV_BIN=.build/debug/wconv $(tools/refenv --light)/python tools/interop/check_safetensors.py
Exit 0 = pass, 1 = fail, 77 = skipped (a module it needs is missing; it says which).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from safetensors import safe_open
    import safetensors.numpy
except ImportError as e:
    print(f"SKIP check_safetensors: {e.name} is not installed in this Python")
    sys.exit(77)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WCONV = os.environ.get("WCONV_BIN", os.path.join(ROOT, ".build", "debug", "wconv"))
FIX = os.path.join(ROOT, "fixtures")
failures = []


def wconv(*args):
    r = subprocess.run([WCONV, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: wconv {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r.stdout


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def raw_tensors(path):
    """Header + raw bytes per tensor, parsed independently of any safetensors reader."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    base = 8 + n
    return meta, {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]: base + v["data_offsets"][1]]) for k, v in header.items()}


def main():
    if not os.access(WCONV, os.X_OK):
        print(f"FAIL: {WCONV} is not built (run swift build)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Every dtype: wconv copy of a python-written file; the reference parser accepts it and
        #    header, metadata and bytes are equal.
        src = os.path.join(FIX, "safetensors", "valid", "all_dtypes.safetensors")
        out = os.path.join(tmp, "all.safetensors")
        wconv("convert", src, out)
        with safe_open(out, framework="numpy") as f:  # validates the whole header
            keys, meta = set(f.keys()), f.metadata()
        m0, t0 = raw_tensors(src)
        m1, t1 = raw_tensors(out)
        check(keys == set(t0), "all dtypes: safetensors lists the same tensor names")
        check(meta == m0, f"all dtypes: __metadata__ carried through ({meta})")
        check(t0 == t1, "all dtypes: every dtype, shape and byte equal (F64…BOOL, F8_E4M3, F8_E5M2, 0-d, zero-size)")
        # Byte identity needs a single metadata key: the reference keeps metadata in a hash map.
        gold = os.path.join(FIX, "safetensors", "valid", "writer_expected.safetensors")
        wconv("convert", gold, os.path.join(tmp, "gold.safetensors"))
        check(open(gold, "rb").read() == open(os.path.join(tmp, "gold.safetensors"), "rb").read(),
              "all dtypes: file byte-identical to python's save_file")

        # 2. Values after a rename, prefix strip and f16 narrowing, read by safetensors.numpy.
        src = os.path.join(FIX, "demo", "tiny_cnn.safetensors")
        out = os.path.join(tmp, "tiny_f16.safetensors")
        wconv("convert", src, out, "--strip-prefix", "auto", "--dtype", "f16")
        ref = safetensors.numpy.load_file(src)
        got = safetensors.numpy.load_file(out)
        check(set(got) == {k[len("module."):] for k in ref}, "rename: names stripped of module.")
        ok = all(np.array_equal(got[k[7:]], v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in ref.items())
        check(ok, "f16: values equal numpy's round-to-nearest-even cast, integers untouched")

        # 3. Tied weights: stored once, alias in __metadata__ as save_model records it.
        out = os.path.join(tmp, "tied.safetensors")
        wconv("convert", os.path.join(FIX, "safetensors", "valid", "tied.safetensors"), out)
        with safe_open(out, framework="numpy") as f:
            check("head.weight" not in f.keys() and f.metadata().get("head.weight") == "emb.weight",
                  "tied: head.weight stored once, recorded as an alias of emb.weight")
        try:
            import torch
            from safetensors.torch import load_model

            class Tied(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.emb = torch.nn.Embedding(5, 3)
                    self.mid = torch.nn.Linear(3, 3)
                    self.head = torch.nn.Linear(3, 5, bias=False)
                    self.head.weight = self.emb.weight
            m = Tied()
            missing, unexpected = load_model(m, out)
            check(not unexpected and m.head.weight.data_ptr() == m.emb.weight.data_ptr(),
                  "tied: safetensors.torch.load_model re-ties the weights")
        except ImportError:
            print("SKIP tied load_model part: torch not installed in this Python")

        # 4. Shards + index, read with safetensors shard by shard.
        out = os.path.join(tmp, "model.safetensors")
        wconv("convert", src, out, "--max-shard-size", "8KB")
        index = json.load(open(out + ".index.json"))
        merged = {}
        for shard in sorted(set(index["weight_map"].values())):
            merged.update(safetensors.numpy.load_file(os.path.join(tmp, shard)))
        check(set(merged) == set(index["weight_map"]) == set(ref), "shards: union of shards == weight_map == source names")
        check(all(np.array_equal(merged[k], v) for k, v in ref.items()), "shards: every tensor equal")
        check(index["metadata"]["total_size"] == sum(v.nbytes for v in ref.values()), "shards: total_size = tensor bytes")
    if failures:
        print(f"check_safetensors: {len(failures)} FAILED")
        return 1
    print("check_safetensors: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
