#!/usr/bin/env python3
"""Create the project's Python environment: the FIX interoperability test's FIX engine and,
with --ml, the model training and inference-comparison packages.

usage: python3 tools/scripts/python_env.py [--quiet] [--ml]

Makes a virtual environment at `<repo>/.deps/venv` (git-ignored) and installs
`asyncfix==1.0.1` into it from PyPI with pip, pinned by the wheel's SHA-256 so a changed
upload cannot slip in. asyncfix is pure Python and has no dependencies, so nothing else is
downloaded. With --ml it also installs the pinned packages of `ML_PACKAGES` (numpy,
scikit-learn, skl2onnx, onnx, onnxruntime: model training in tools/scripts/train.py and the
Python side of the inference benchmark) as binary wheels from PyPI, with their own
dependencies. Prints the venv's python path on stdout (the only line written there).

Idempotent and fast when already set up: if the venv's python imports asyncfix 1.0.1 the
script only prints the path. A venv left broken by an interrupted run (no python, or
asyncfix missing) is repaired. A lock file serialises concurrent runs (`./x test` and a
`cargo test` started at the same time).

Exit status 0 when the venv is ready; non-zero with a message on stderr saying what to
install or fix otherwise (no venv module, no network to PyPI, ...).
"""
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile

ASYNCFIX = "asyncfix==1.0.1"
# The sha256 PyPI publishes for asyncfix-1.0.1-py2.py3-none-any.whl (its only file).
ASYNCFIX_SHA256 = "2724c90a9ecb8341528a072af0006a476f0d36d34579b4619fb1fe907f94abde"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPS = os.path.join(REPO, ".deps")
VENV = os.path.join(DEPS, "venv")
PYTHON = os.path.join(VENV, "bin", "python")

# What "ready" means, run by the venv's own interpreter.
CHECK = (
    "import importlib.metadata as m, asyncfix; "
    "raise SystemExit(0 if m.version('asyncfix') == '1.0.1' else 1)"
)

# Training and inference comparison (--ml). Pinned so that a training run is reproducible;
# onnxruntime matches the library the engine loads (x: ORT_VERSION).
ML_PACKAGES = [
    "numpy==2.4.6",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "skl2onnx==1.20.0",
    "onnx==1.23.2",
    "onnxruntime==1.31.1",
]
ML_CHECK = (
    "import importlib.metadata as m, sys; "
    "want = dict(p.split('==') for p in sys.argv[1:]); "
    "raise SystemExit(0 if all(m.version(k) == v for k, v in want.items()) else 1)"
)


def log(message):
    print(f"python_env: {message}", file=sys.stderr, flush=True)


def ready(check=CHECK, args=()):
    if not os.path.exists(PYTHON):
        return False
    try:
        done = subprocess.run([PYTHON, "-c", check, *args], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ml_ready():
    return ready(ML_CHECK, ML_PACKAGES)


def install_ml():
    log(f"installing {' '.join(ML_PACKAGES)} from PyPI into {VENV}")
    run(
        [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-input", "--only-binary=:all:", *ML_PACKAGES],
        "pip install (ml packages)",
    )


def run(cmd, what):
    try:
        subprocess.run(cmd, check=True, timeout=600)
    except FileNotFoundError as error:
        raise SystemExit(f"python_env: {what} failed: {error}")
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"python_env: {what} failed (exit {error.returncode}): {' '.join(cmd)}")
    except subprocess.TimeoutExpired:
        raise SystemExit(f"python_env: {what} timed out: {' '.join(cmd)}")


def create_venv():
    # A venv whose interpreter is gone (python upgraded, interrupted creation) cannot be
    # repaired in place: start over.
    if os.path.isdir(VENV) and not os.path.exists(PYTHON):
        shutil.rmtree(VENV)
    if not os.path.exists(PYTHON):
        log(f"creating {VENV}")
        try:
            import venv  # noqa: F401  (only to give a clear message when it is missing)
            import ensurepip  # noqa: F401
        except ImportError:
            raise SystemExit(
                "python_env: this python3 has no venv/ensurepip module; install it "
                "(Debian/Ubuntu: apt-get install python3-venv) and run again"
            )
        run([sys.executable, "-m", "venv", VENV], "creating the venv")


def install():
    log(f"installing {ASYNCFIX} from PyPI into {VENV}")
    # --require-hashes needs a requirements file; --no-deps because the wheel declares
    # no runtime dependencies and nothing else may be downloaded.
    with tempfile.NamedTemporaryFile("w", dir=DEPS, suffix=".txt", delete=False) as req:
        req.write(f"{ASYNCFIX} --hash=sha256:{ASYNCFIX_SHA256}\n")
    try:
        run(
            [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-input", "--no-deps", "--only-binary=:all:", "--require-hashes",
             "-r", req.name],
            f"pip install {ASYNCFIX}",
        )
    finally:
        os.unlink(req.name)


def main():
    quiet = "--quiet" in sys.argv[1:]
    ml = "--ml" in sys.argv[1:]
    os.makedirs(DEPS, exist_ok=True)
    with open(os.path.join(DEPS, "venv.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready():
            create_venv()
            install()
            if not ready():
                raise SystemExit(f"python_env: {PYTHON} still cannot import {ASYNCFIX}")
        elif not quiet:
            log(f"{ASYNCFIX} ready in {VENV}")
        if ml and not ml_ready():
            install_ml()
            if not ml_ready():
                raise SystemExit(f"python_env: {PYTHON} still lacks {' '.join(ML_PACKAGES)}")
    print(PYTHON)


if __name__ == "__main__":
    main()
