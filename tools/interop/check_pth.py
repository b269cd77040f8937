#!/usr/bin/env python3
"""Interop check: .pth files written by wconv's PyTorchWriter load in real torch with
torch.load(weights_only=True) and in Python's zipfile, with the values torch originally saved.

Usage: $(tools/refenv) tools/interop/check_pth.py DIR
  DIR holds <fixture>.wconv.pth files, written by
  `WCONV_INTEROP_OUT=DIR swift test --filter PyTorchWriterTests`;
  each is compared with fixtures/pytorch/<fixture>.json. Exits 1 on any difference.
"""
import hashlib
import json
import os
import sys
import zipfile

try:
    import torch
except ImportError:
    print("SKIP check_pth: torch is not installed in the reference env (tools/refenv installs it)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "fixtures", "pytorch")
DT = {"f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16,
      "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8, "u8": torch.uint8,
      "bool": torch.bool, "f8e4m3": torch.float8_e4m3fn, "f8e5m2": torch.float8_e5m2}


def tensor_bytes(t):
    t = t.detach().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def check(path, expected):
    problems = []
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad:
            problems.append(f"zipfile: CRC error in {bad}")
        for info in z.infolist():
            if "/data/" in info.filename:
                # payload offset = header offset + 30 + name + local extra
                with open(path, "rb") as f:
                    f.seek(info.header_offset + 26)
                    n, e = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
                if (info.header_offset + 30 + n + e) % 64:
                    problems.append(f"{info.filename} payload not 64-byte aligned")
    sd = torch.load(path, weights_only=True, map_location="cpu")
    names = [t["name"] for t in expected["tensors"]]
    if list(sd.keys()) != names:
        problems.append(f"names differ: {list(sd.keys())} vs {names}")
    for e in expected["tensors"]:
        t = sd.get(e["name"])
        if t is None:
            continue
        if t.dtype != DT[e["dtype"]] or list(t.shape) != e["shape"]:
            problems.append(f"{e['name']}: {t.dtype}{list(t.shape)} vs {e['dtype']}{e['shape']}")
        elif hashlib.sha256(tensor_bytes(t)).hexdigest() != e["sha256"]:
            problems.append(f"{e['name']}: bytes differ")
    for alias, holder in expected.get("aliases", {}).items():
        if alias in sd and holder in sd and sd[alias].untyped_storage().data_ptr() != sd[holder].untyped_storage().data_ptr():
            problems.append(f"{alias} is no longer tied to {holder}")
    return len(sd), problems


def main():
    if len(sys.argv) == 1:
        sys.argv.append(os.path.join(ROOT, ".build", "interop", "pth"))
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    d = sys.argv[1]
    files = sorted(f for f in os.listdir(d) if f.endswith(".wconv.pth"))
    if not files:
        print(f"check_pth: no *.wconv.pth files in {d}")
        return 1
    failed = 0
    for f in files:
        stem = f[: -len(".wconv.pth")]
        with open(os.path.join(FIX, stem + ".json")) as fh:
            expected = json.load(fh)
        n, problems = check(os.path.join(d, f), expected)
        if problems:
            failed += 1
            print(f"FAIL {f}:")
            for p in problems:
                print("   ", p)
        else:
            print(f"ok   {f}: {n} tensors equal to torch's originals (torch.load weights_only=True, zipfile CRC, 64-byte alignment)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
