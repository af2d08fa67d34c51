#!/usr/bin/env python3
"""Write the small ONNX models and metadata files the inference tests and benchmark use.

usage: python3 tools/scripts/make_test_models.py [OUT_DIR]

OUT_DIR defaults to `core/tests/data/models/` of this checkout. Needs numpy and onnx: when
this python lacks them, the script asks `tools/scripts/python_env.py --ml` for the project's
venv python and re-runs itself under it.

Deterministic: fixed seeds (numpy PCG64), fixed ONNX IR version and opset, sorted JSON keys,
no timestamps; two runs write byte-identical files. Every model is built node by node with
`onnx.helper` and checked with `onnx.checker`.

What it writes (each model = `<stem>.onnx` + `<stem>.json` metadata, the engine's format:
core/src/signals/model/metadata.rs):

    mlp-1            name "mlp" v1: 16 -> 32 (relu) -> 1, input `features` [1, 16], output
                     `prediction` [1, 1]; validation rmse 0.5; carries a monitoring reference
    mlp-2            name "mlp" v2: same layout, other weights, dynamic batch (shape [null, 16])
    mlp-conf         a second head `confidence` = sigmoid(h . w + b), shape [-1, 1] style dims
    mlp-prob         a second head `probabilities` = softmax over 3 classes, symbolic batch "batch"
    bad-input-name   the model's input is `x`, the metadata says `features`
    bad-width        the model takes [1, 12], the metadata says [1, 16]
    bad-features     model and metadata say [1, 12], the feature list has 16 entries
    bad-output-name  the metadata names the output `score`, the model `prediction`
    bad-dtype        the model's input is double, not float
    bad-hash         points at mlp-1.onnx with a wrong sha256
    missing          points at missing.onnx, which does not exist
    corrupt          corrupt.onnx: half of mlp-1.onnx plus junk; its sha256 is right
    bad-path         `onnx` is "../models/mlp-1.onnx" (not a plain file name)
    no-rmse          no confidence output and no validation rmse to derive one from

and `expected/forward.json` (outside the registry's `*.json` scan): test input vectors and,
per good model, numpy's float64 forward pass over the float32 weights.

The feature list the metadata declares is `FEATURES` below, the one place to change when the
engine's typed feature spec changes.
"""
import hashlib
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "core", "tests", "data", "models")

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    if os.environ.get("AAITI_MAKE_MODELS_REEXEC"):
        raise
    python = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "scripts", "python_env.py"), "--ml",
         "--quiet"],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    os.environ["AAITI_MAKE_MODELS_REEXEC"] = "1"
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])

# The feature vector every test model declares (16 entries, input order). The single place to
# edit when the feature spec's schema changes.
SAMPLE_MS = 100
FEATURES = [
    {"name": f"ret_{h}", "kind": "log_return", "horizon": h, "norm": "none"}
    for h in range(1, 17)
]

INPUTS = 16
HIDDEN = 32
IR_VERSION = 8
OPSET = 17
PRODUCER = "aaiti make_test_models.py"


def weights(seed, inputs=INPUTS):
    """Float32 weights of the MLP and of its optional heads, from one seed."""
    rng = np.random.default_rng(seed)
    w = {
        "w1": rng.standard_normal((inputs, HIDDEN)) / np.sqrt(inputs),
        "b1": rng.standard_normal(HIDDEN) * 0.1,
        "w2": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": rng.standard_normal(1) * 0.1,
        "w3": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b3": rng.standard_normal(1) * 0.1,
        "w4": rng.standard_normal((HIDDEN, 3)) / np.sqrt(HIDDEN),
        "b4": rng.standard_normal(3) * 0.1,
    }
    return {k: v.astype(np.float32) for k, v in w.items()}


def mlp(w, input_name="features", batch=1, inputs=INPUTS, heads=(), dtype=TensorProto.FLOAT):
    """The ONNX model: features -> MatMul/Add/Relu -> MatMul/Add -> prediction (+ heads)."""
    init = [numpy_helper.from_array(w[k], k) for k in ("w1", "b1", "w2", "b2")]
    nodes = []
    x = input_name
    if dtype != TensorProto.FLOAT:
        # A double input cast to float, so the graph is valid and only the input type differs.
        nodes.append(helper.make_node("Cast", [input_name], ["x_f"], to=TensorProto.FLOAT))
        x = "x_f"
    nodes += [
        helper.make_node("MatMul", [x, "w1"], ["h_mm"]),
        helper.make_node("Add", ["h_mm", "b1"], ["h_pre"]),
        helper.make_node("Relu", ["h_pre"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["y_mm"]),
        helper.make_node("Add", ["y_mm", "b2"], ["prediction"]),
    ]
    outputs = [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [batch, 1])]
    if "confidence" in heads:
        init += [numpy_helper.from_array(w[k], k) for k in ("w3", "b3")]
        nodes += [
            helper.make_node("MatMul", ["h", "w3"], ["c_mm"]),
            helper.make_node("Add", ["c_mm", "b3"], ["c_pre"]),
            helper.make_node("Sigmoid", ["c_pre"], ["confidence"]),
        ]
        outputs.append(helper.make_tensor_value_info("confidence", TensorProto.FLOAT, [batch, 1]))
    if "probabilities" in heads:
        init += [numpy_helper.from_array(w[k], k) for k in ("w4", "b4")]
        nodes += [
            helper.make_node("MatMul", ["h", "w4"], ["p_mm"]),
            helper.make_node("Add", ["p_mm", "b4"], ["p_pre"]),
            helper.make_node("Softmax", ["p_pre"], ["probabilities"], axis=-1),
        ]
        outputs.append(
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, 3]))
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info(input_name, dtype, [batch, inputs])],
        outputs, init)
    model = helper.make_model(
        graph, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def forward(w, x):
    """numpy's forward pass in float64 over the float32 weights: (prediction, conf, probs)."""
    x = np.asarray(x, dtype=np.float64)
    h = np.maximum(x @ w["w1"].astype(np.float64) + w["b1"], 0.0)
    y = float((h @ w["w2"].astype(np.float64) + w["b2"])[0])
    c = float(1.0 / (1.0 + np.exp(-(h @ w["w3"].astype(np.float64) + w["b3"])[0])))
    logits = h @ w["w4"].astype(np.float64) + w["b4"]
    p = np.exp(logits - logits.max())
    p = p / p.sum()
    return y, c, [float(v) for v in p]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def metadata(name, version, onnx_file, digest, inputs, outputs, rmse=0.5, features=None,
             reference=None):
    meta = {
        "name": name,
        "version": version,
        "onnx": onnx_file,
        "sha256": digest,
        "inputs": [{"name": n, "shape": s} for n, s in inputs],
        "outputs": [{"name": n, "shape": s} for n, s in outputs],
        "horizon_ms": 1000,
        "features": {"sample_ms": SAMPLE_MS, "features": FEATURES if features is None else features},
        "training": {
            "source": "synthetic weights (tools/scripts/make_test_models.py)",
            "rows": 0,
            "from_ns": 0,
            "to_ns": 0,
            "csv_sha256": "0" * 64,
            "seed": version,
        },
        "validation": {"folds": [], "ic": None, "hit_rate": None, "rmse": rmse},
    }
    if reference is not None:
        meta["reference"] = reference
    return meta


def histogram():
    return {"edges": [-1.0, 0.0, 1.0], "fractions": [0.1, 0.4, 0.4, 0.1]}


def write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as out:
        out.write(data)


def write_json(path, value):
    write(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def main():
    out = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    models = {}

    def model(stem, onnx_bytes, meta):
        if onnx_bytes is not None:
            write(os.path.join(out, f"{stem}.onnx"), onnx_bytes)
        write_json(os.path.join(out, f"{stem}.json"), meta)

    fixed_in = [("features", [1, INPUTS])]
    fixed_out = [("prediction", [1, 1])]

    w1 = weights(1)
    b = mlp(w1)
    reference = {"features": [histogram() for _ in FEATURES], "prediction": histogram()}
    model("mlp-1", b, metadata("mlp", 1, "mlp-1.onnx", sha256(b), fixed_in, fixed_out,
                               reference=reference))
    models["mlp-1"] = (w1, b)

    w2 = weights(2)
    b2 = mlp(w2, batch=None)
    model("mlp-2", b2, metadata("mlp", 2, "mlp-2.onnx", sha256(b2),
                                [("features", [None, INPUTS])], [("prediction", [None, 1])]))

    w3 = weights(3)
    b3 = mlp(w3, batch="N", heads=("confidence",))
    model("mlp-conf", b3, metadata("mlp-conf", 1, "mlp-conf.onnx", sha256(b3),
                                   [("features", [-1, INPUTS])],
                                   [("prediction", [-1, 1]), ("confidence", [-1, 1])], rmse=None))

    w4 = weights(4)
    b4 = mlp(w4, batch="batch", heads=("probabilities",))
    model("mlp-prob", b4, metadata("mlp-prob", 1, "mlp-prob.onnx", sha256(b4),
                                   [("features", ["batch", INPUTS])],
                                   [("prediction", ["batch", 1]), ("probabilities", ["batch", 3])],
                                   rmse=None))

    b = mlp(w1, input_name="x")
    model("bad-input-name", b, metadata("bad-input-name", 1, "bad-input-name.onnx", sha256(b),
                                        fixed_in, fixed_out))

    w12 = weights(5, inputs=12)
    b = mlp(w12, inputs=12)
    model("bad-width", b, metadata("bad-width", 1, "bad-width.onnx", sha256(b), fixed_in,
                                   fixed_out))
    b = mlp(w12, inputs=12)
    model("bad-features", b, metadata("bad-features", 1, "bad-features.onnx", sha256(b),
                                      [("features", [1, 12])], fixed_out))

    model("bad-output-name", None, metadata("bad-output-name", 1, "mlp-1.onnx",
                                            sha256(models["mlp-1"][1]), fixed_in,
                                            [("score", [1, 1])]))

    b = mlp(w1, dtype=TensorProto.DOUBLE)
    model("bad-dtype", b, metadata("bad-dtype", 1, "bad-dtype.onnx", sha256(b), fixed_in,
                                   fixed_out))

    model("bad-hash", None, metadata("bad-hash", 1, "mlp-1.onnx", "ab" * 32, fixed_in,
                                     fixed_out))
    model("missing", None, metadata("missing", 1, "missing.onnx", "00" * 32, fixed_in,
                                    fixed_out))

    mlp1 = models["mlp-1"][1]
    corrupt = mlp1[: len(mlp1) // 2] + b"\xff\xff\xff\xffnot an onnx model"
    model("corrupt", corrupt, metadata("corrupt", 1, "corrupt.onnx", sha256(corrupt), fixed_in,
                                       fixed_out))

    model("bad-path", None, metadata("bad-path", 1, "../models/mlp-1.onnx", sha256(mlp1),
                                     fixed_in, fixed_out))
    model("no-rmse", None, metadata("no-rmse", 1, "mlp-1.onnx", sha256(mlp1), fixed_in,
                                    fixed_out, rmse=None))

    # Test vectors: zeros, ones, alternating signs, then seeded normals.
    rng = np.random.default_rng(1234)
    vectors = [np.zeros(INPUTS), np.ones(INPUTS), np.array([(-1.0) ** i for i in range(INPUTS)])]
    vectors += [rng.standard_normal(INPUTS) for _ in range(5)]
    vectors = [np.asarray(v, dtype=np.float32) for v in vectors]
    expected = {"inputs": [[float(x) for x in v] for v in vectors], "models": {}}
    for stem, w, head in (("mlp-1", w1, None), ("mlp-2", w2, None),
                          ("mlp-conf", w3, "confidence"), ("mlp-prob", w4, "probabilities")):
        rows = [forward(w, v) for v in vectors]
        expected["models"][stem] = {"prediction": [r[0] for r in rows]}
        if head == "confidence":
            expected["models"][stem]["confidence"] = [r[1] for r in rows]
        if head == "probabilities":
            expected["models"][stem]["probabilities"] = [r[2] for r in rows]
    write_json(os.path.join(out, "expected", "forward.json"), expected)
    print(f"make_test_models: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
