#!/usr/bin/env python3
"""Install libonnxruntime.so from PyPI's `onnxruntime` wheel (no other source).

usage: fetch_onnxruntime.py VERSION WHEEL_DIR DEST_DIR

Uses `pip download` when pip is available; otherwise asks PyPI's JSON API for the
manylinux wheel of this machine's architecture. The wheel's shared library does not
depend on the Python version, so any CPython wheel of the release will do.
"""
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
import zipfile


def pip_download(version, wheel_dir):
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", f"onnxruntime=={version}", "-d", wheel_dir]
    try:
        subprocess.run(cmd, check=True)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    found = glob.glob(os.path.join(wheel_dir, f"onnxruntime-{version}-*.whl"))
    return found[0] if found else None


def pypi_download(version, wheel_dir):
    arch = platform.machine()
    with urllib.request.urlopen(f"https://pypi.org/pypi/onnxruntime/{version}/json") as reply:
        release = json.load(reply)
    for file in release["urls"]:
        name = file["filename"]
        if name.endswith(".whl") and "manylinux" in name and arch in name:
            path = os.path.join(wheel_dir, name)
            with urllib.request.urlopen(file["url"]) as reply, open(path, "wb") as out:
                shutil.copyfileobj(reply, out)
            return path
    raise SystemExit(f"no manylinux {arch} wheel for onnxruntime {version} on PyPI")


def main():
    version, wheel_dir, dest = sys.argv[1:4]
    os.makedirs(wheel_dir, exist_ok=True)
    os.makedirs(dest, exist_ok=True)
    wheel = glob.glob(os.path.join(wheel_dir, f"onnxruntime-{version}-*.whl"))
    wheel = wheel[0] if wheel else (pip_download(version, wheel_dir) or pypi_download(version, wheel_dir))
    wanted = f"libonnxruntime.so.{version}"
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.endswith("/" + wanted)]
        if not members:
            raise SystemExit(f"{wheel} has no {wanted}")
        with archive.open(members[0]) as src, open(os.path.join(dest, wanted), "wb") as out:
            shutil.copyfileobj(src, out)
    print(os.path.join(dest, wanted))


if __name__ == "__main__":
    main()
