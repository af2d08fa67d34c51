#!/usr/bin/env python3
"""Create the project's Python environment for the FIX interoperability test.

usage: python3 tools/scripts/python_env.py [--quiet]

Makes a virtual environment at `<repo>/.deps/venv` (git-ignored) and installs
`asyncfix==1.0.1` into it from PyPI with pip, pinned by the wheel's SHA-256 so a changed
upload cannot slip in. asyncfix is pure Python and has no dependencies, so nothing else is
downloaded. Prints the venv's python path on stdout (the only line written there).

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


def log(message):
    print(f"python_env: {message}", file=sys.stderr, flush=True)


def ready():
    if not os.path.exists(PYTHON):
        return False
    try:
        done = subprocess.run([PYTHON, "-c", CHECK], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


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
    print(PYTHON)


if __name__ == "__main__":
    main()
