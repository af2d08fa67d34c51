#!/usr/bin/env python3
"""Python baseline of the inference benchmark (core/benches/inference.rs): the latency of
onnxruntime's `InferenceSession.run` on a model and a set of feature vectors.

usage: bench_onnx_python.py MODEL.onnx INPUTS.json [--iterations N] [--warmup N] [--cpu K]

INPUTS.json is `{"inputs": [[f32, ...], ...]}`; run i scores vector i mod len. The session
has the engine's settings: one intra-op and one inter-op thread, sequential execution, every
graph optimisation, no spinning. The vectors are turned into `[1, n]` float32 arrays before
the timing; each `run` call alone is timed with `time.perf_counter_ns` (its own cost, about
50-100 ns, is included, as the Rust side includes its clock's). --cpu pins the process to
one CPU, like the Rust side.

Prints one JSON object on stdout: {"runtime", "python", "iterations", "p50_ns", "p99_ns",
"p999_ns", "mean_ns", "min_ns", "max_ns", "clock_ns"} (clock_ns: p50 of an empty timing pair).
Needs numpy and onnxruntime: run it with the venv python `tools/scripts/python_env.py --ml`
prints.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import onnxruntime as ort


def percentile(sorted_ns, q):
    """The smallest sample with at least q of the samples at or below it (HdrHistogram's
    definition, without its bucketing)."""
    index = max(0, min(len(sorted_ns) - 1, int(np.ceil(q * len(sorted_ns))) - 1))
    return int(sorted_ns[index])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()

    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    with open(args.inputs) as f:
        vectors = [np.asarray([v], dtype=np.float32) for v in json.load(f)["inputs"]]
    feeds = [{name: v} for v in vectors]

    run = session.run
    clock = time.perf_counter_ns
    for i in range(args.warmup):
        run(None, feeds[i % len(feeds)])

    samples = np.empty(args.iterations, dtype=np.int64)
    for i in range(args.iterations):
        feed = feeds[i % len(feeds)]
        start = clock()
        run(None, feed)
        samples[i] = clock() - start

    empty = np.empty(10_000, dtype=np.int64)
    for i in range(len(empty)):
        start = clock()
        empty[i] = clock() - start

    samples.sort()
    empty.sort()
    print(json.dumps({
        "runtime": ort.__version__,
        "python": platform.python_version(),
        "iterations": args.iterations,
        "p50_ns": percentile(samples, 0.5),
        "p99_ns": percentile(samples, 0.99),
        "p999_ns": percentile(samples, 0.999),
        "mean_ns": float(samples.mean()),
        "min_ns": int(samples[0]),
        "max_ns": int(samples[-1]),
        "clock_ns": percentile(empty, 0.5),
    }))


if __name__ == "__main__":
    sys.exit(main())
