#!/usr/bin/env python3
"""Train a model on exported features and write it as ONNX plus the engine's metadata.

usage: python3 tools/scripts/train.py --csv FEATURES.csv --spec SPEC.json --horizon-ms H
           --out-dir DIR [--name NAME] [--version N] [--source TEXT] [--folds K]
           [--alpha A]

FEATURES.csv is what the engine's feature export writes (`aaiti features`; format in
core/src/signals/features/export.rs): `ts_ns,instrument,<features>,fwd_ret_<h>ms,...`.
SPEC.json is the feature spec the CSV was exported with (the `FeatureSpec` JSON:
`{"sample_ms": ..., "features": [...]}`); its feature names must be the CSV's columns, in
order. The target is the `fwd_ret_<H>ms` column.

Runs under the project's pinned packages: it asks `tools/scripts/python_env.py --ml` for the
venv python (installing numpy, scikit-learn, scipy, skl2onnx, onnx and onnxruntime at pinned
versions the first time) and re-executes itself under it.

What it does:

1. Reads the CSV (rows in time order), checks the columns against the spec.
2. Walk-forward validation: the rows are cut into K+1 consecutive blocks; fold i trains on
   blocks 0..i (minus an embargo of ceil(H / sample_ms) rows before the test block, whose
   targets would overlap it) and tests on block i. Per fold and pooled over all folds:
   IC (Pearson correlation of prediction and realised forward return), hit rate (share of
   rows with a non-zero prediction and return whose signs agree) and RMSE.
3. The final model: z-score normalisation (mean and population std of each feature over
   all rows; a constant feature gets std 1) and sklearn Ridge(alpha) on the normalised
   features, predicting the forward log return.
4. ONNX via skl2onnx: input `features` float32 [N, n], output `prediction` float32 [N, 1]
   (N dynamic), opsets fixed. The prediction of the exported graph (onnxruntime, float32
   inputs normalised exactly as the engine does) is checked against sklearn's.
5. Writes DIR/NAME-VERSION.onnx and DIR/NAME-VERSION.json, the metadata the engine reads
   (core/src/signals/model/mod.rs documents it field by field):

   name, version, onnx (file name), sha256 (of the .onnx), inputs/outputs [{name, shape}]
   (shape: integers, null for a dynamic dimension), horizon_ms, features (the spec with each
   feature's `norm` set to {"zscore": {"mean", "std"}}), training {source, rows, from_ns,
   to_ns, csv_sha256, target, model, alpha, seed, packages}, validation {folds: [{fold,
   train_rows, test_rows, from_ns, to_ns, ic, hit_rate, rmse}], ic, hit_rate, rmse,
   embargo_rows, method}, reference {features: [{edges, fractions}] (one per feature, over
   its normalised training values), prediction: {edges, fractions} (the graph's in-sample
   predictions)}.

   A histogram has the deciles (10%..90%, linear interpolation) as `edges`, duplicates
   removed, and `fractions` (len(edges) + 1 of them) the share of values in each bin: bin j
   holds the values with exactly j edges <= value (below the first edge: bin 0; at or above
   the last: the last bin). Metrics that cannot be computed (a constant series) are null.

Reproducible: no randomness (Ridge with the Cholesky solver; the seed is fixed anyway), a
fixed PYTHONHASHSEED, opset imports in sorted order, no timestamps, sorted JSON keys: the
same CSV and arguments give byte-identical files (on one machine: BLAS kernels may round
differently on another CPU). Prints
the metadata path on stdout and the validation results on stderr.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REEXEC = "AAITI_TRAIN_REEXEC"
SEED = 0
# ONNX opsets of the exported graph (ONNX Runtime 1.31 runs both).
OPSET = {"": 17, "ai.onnx.ml": 3}
PACKAGES = ["numpy", "scikit-learn", "scipy", "skl2onnx", "onnx", "onnxruntime"]


def venv_python():
    """The project's ML venv python (python_env.py --ml creates it when missing)."""
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "scripts", "python_env.py"), "--ml",
         "--quiet"],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit("train.py: python_env.py --ml failed (see above)")
    return done.stdout.strip().splitlines()[-1]


if os.environ.get(REEXEC) != "1":
    # Always under the pinned packages, whatever this interpreter has, and with a fixed
    # string hash (skl2onnx gathers opsets in sets): reproducibility.
    python = venv_python()
    os.environ[REEXEC] = "1"
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])

import importlib.metadata  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402


def fail(message):
    raise SystemExit(f"train.py: {message}")


def log(message):
    print(message, file=sys.stderr, flush=True)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_csv(path, names, target):
    """ts (int64), features (float64 rows x n), target (float64), in time order."""
    with open(path, newline="") as file:
        reader = csv.reader(file)
        try:
            header = next(reader)
        except StopIteration:
            fail(f"{path} is empty")
        if header[:2] != ["ts_ns", "instrument"]:
            fail(f"{path}: the header does not start with ts_ns,instrument")
        columns = header[2:2 + len(names)]
        if columns != names:
            fail(f"{path}: feature columns {columns} are not the spec's {names}")
        if target not in header:
            forward = [c for c in header if c.startswith("fwd_ret_")]
            fail(f"{path}: no {target} column (it has {forward})")
        target_index = header.index(target)
        ts, features, returns = [], [], []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                fail(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
            try:
                ts.append(int(row[0]))
                features.append([float(v) for v in row[2:2 + len(names)]])
                returns.append(float(row[target_index]))
            except ValueError as error:
                fail(f"{path}:{line}: {error}")
    if not ts:
        fail(f"{path} has no rows")
    ts = np.array(ts, dtype=np.int64)
    x = np.array(features, dtype=np.float64)
    y = np.array(returns, dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        fail(f"{path} holds NaN or infinite values")
    order = np.argsort(ts, kind="stable")
    return ts[order], x[order], y[order]


def zscore(x):
    """Per-column mean and population std (1 for a constant column)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where((std > 0) & np.isfinite(std), std, 1.0)
    return mean, std


def normalise(x, mean, std):
    """What the engine feeds the model: ((x - mean) * (1 / std)) as float32."""
    return ((x - mean) * (1.0 / std)).astype(np.float32)


def fit(x, y, alpha):
    model = Ridge(alpha=alpha, fit_intercept=True, solver="cholesky", random_state=SEED)
    model.fit(x, y)
    return model


def number(value):
    """A JSON number, or null when it is not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


def metrics(prediction, actual):
    prediction = np.asarray(prediction, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    ic = None
    if len(actual) > 1 and prediction.std() > 0 and actual.std() > 0:
        ic = number(np.corrcoef(prediction, actual)[0, 1])
    signed = (prediction != 0) & (actual != 0)
    hit = None
    if signed.any():
        hit = number(np.mean(np.sign(prediction[signed]) == np.sign(actual[signed])))
    rmse = number(np.sqrt(np.mean((prediction - actual) ** 2))) if len(actual) else None
    return {"ic": ic, "hit_rate": hit, "rmse": rmse}


def walk_forward(ts, x, y, folds, embargo, alpha):
    bounds = np.linspace(0, len(y), folds + 2).astype(np.int64)
    results, pooled_prediction, pooled_actual = [], [], []
    for fold in range(1, folds + 1):
        start, end = int(bounds[fold]), int(bounds[fold + 1])
        train_end = start - embargo
        if train_end < 2 or end <= start:
            fail(f"fold {fold}: too few rows for {folds} folds with an embargo of {embargo}")
        mean, std = zscore(x[:train_end])
        model = fit(normalise(x[:train_end], mean, std), y[:train_end], alpha)
        prediction = model.predict(normalise(x[start:end], mean, std))
        result = {
            "fold": fold,
            "train_rows": train_end,
            "test_rows": end - start,
            "from_ns": int(ts[start]),
            "to_ns": int(ts[end - 1]),
        }
        result.update(metrics(prediction, y[start:end]))
        results.append(result)
        pooled_prediction.append(prediction)
        pooled_actual.append(y[start:end])
    pooled = metrics(np.concatenate(pooled_prediction), np.concatenate(pooled_actual))
    return results, pooled


def histogram(values):
    values = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(values, np.arange(1, 10) / 10.0))
    bins = np.searchsorted(edges, values, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return {
        "edges": [float(e) for e in edges],
        "fractions": [float(c) / len(values) for c in counts],
    }


def shape_of(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", required=True, help="feature export (aaiti features)")
    parser.add_argument("--spec", required=True, help="the FeatureSpec JSON it was exported with")
    parser.add_argument("--horizon-ms", required=True, type=int, help="target fwd_ret_<H>ms")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--name", default="model")
    parser.add_argument("--version", default=1, type=int)
    parser.add_argument("--source", default=None, help="where the CSV came from (metadata)")
    parser.add_argument("--folds", default=5, type=int)
    parser.add_argument("--alpha", default=1.0, type=float)
    args = parser.parse_args()
    np.random.seed(SEED)
    if args.folds < 1:
        fail("--folds must be at least 1")
    if not (args.alpha > 0 and math.isfinite(args.alpha)):
        fail("--alpha must be a positive number")
    if args.horizon_ms <= 0:
        fail("--horizon-ms must be positive")

    with open(args.spec) as file:
        spec = json.load(file)
    try:
        sample_ms = int(spec["sample_ms"])
        names = [feature["name"] for feature in spec["features"]]
    except (KeyError, TypeError, ValueError) as error:
        fail(f"{args.spec} is not a feature spec: {error!r}")
    if sample_ms <= 0 or not names:
        fail(f"{args.spec}: sample_ms must be positive and features not empty")
    target = f"fwd_ret_{args.horizon_ms}ms"
    ts, x, y = read_csv(args.csv, names, target)
    n = len(names)
    embargo = -(-args.horizon_ms // sample_ms)
    log(f"{len(y)} rows x {n} features, target {target}, embargo {embargo} rows")

    folds, pooled = walk_forward(ts, x, y, args.folds, embargo, args.alpha)
    for fold in folds:
        log(f"fold {fold['fold']}: train {fold['train_rows']} test {fold['test_rows']} "
            f"ic {fold['ic']} hit {fold['hit_rate']} rmse {fold['rmse']}")
    log(f"pooled out of sample: ic {pooled['ic']} hit {pooled['hit_rate']} "
        f"rmse {pooled['rmse']}")

    mean, std = zscore(x)
    for name, column_std in zip(names, x.std(axis=0)):
        if not column_std > 0:
            log(f"warning: {name} is constant in the training data (std set to 1)")
    inputs = normalise(x, mean, std)
    model = fit(inputs, y, args.alpha)

    stem = f"{args.name}-{args.version}"
    graph = convert_sklearn(
        model,
        name=stem,
        initial_types=[("features", FloatTensorType([None, n]))],
        final_types=[("prediction", FloatTensorType([None, 1]))],
        target_opset=OPSET,
    )
    # Opset imports in a fixed order (skl2onnx lists them in set order).
    opsets = sorted((o.domain, o.version) for o in graph.opset_import)
    del graph.opset_import[:]
    for domain, version in opsets:
        graph.opset_import.add(domain=domain, version=version)
    onnx.checker.check_model(graph)
    onnx_bytes = graph.SerializeToString()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        onnx_bytes, options, providers=["CPUExecutionProvider"]
    )
    served = session.run(["prediction"], {"features": inputs})[0].reshape(-1)
    reference = model.predict(inputs.astype(np.float64))
    scale = max(float(np.abs(reference).max()), 1e-12)
    if float(np.abs(served - reference).max()) > 1e-4 * scale:
        fail("the ONNX graph's predictions differ from sklearn's")

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{stem}.onnx")
    with open(onnx_path, "wb") as file:
        file.write(onnx_bytes)

    features = json.loads(json.dumps(spec))
    for feature, m, s in zip(features["features"], mean, std):
        feature["norm"] = {"zscore": {"mean": float(m), "std": float(s)}}
    metadata = {
        "name": args.name,
        "version": args.version,
        "onnx": f"{stem}.onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "inputs": [{"name": i.name, "shape": shape_of(i)} for i in graph.graph.input],
        "outputs": [{"name": o.name, "shape": shape_of(o)} for o in graph.graph.output],
        "horizon_ms": args.horizon_ms,
        "features": features,
        "training": {
            "source": args.source or os.path.basename(args.csv),
            "rows": int(len(y)),
            "from_ns": int(ts[0]),
            "to_ns": int(ts[-1]),
            "csv_sha256": sha256_file(args.csv),
            "target": target,
            "model": "sklearn Ridge (cholesky) on z-scored features",
            "alpha": args.alpha,
            "seed": SEED,
            "packages": {p: importlib.metadata.version(p) for p in PACKAGES},
        },
        "validation": dict(
            folds=folds,
            embargo_rows=int(embargo),
            method=f"walk-forward, {args.folds} folds, expanding window",
            **pooled,
        ),
        "reference": {
            "features": [histogram(inputs[:, j].astype(np.float64)) for j in range(n)],
            "prediction": histogram(served.astype(np.float64)),
        },
    }
    json_path = os.path.join(args.out_dir, f"{stem}.json")
    with open(json_path, "w") as file:
        json.dump(metadata, file, sort_keys=True, indent=2, allow_nan=False)
        file.write("\n")
    print(json_path)


if __name__ == "__main__":
    main()
