#!/usr/bin/env python3
"""`pip install ./python` works: in a fresh venv created with --system-site-packages (so that the
system's numpy is visible), offline (--no-index --no-deps --no-build-isolation), the installed
package imports from the venv and reads a container.

Usage: test_install.py SOURCE_ROOT.  Exit 77 (skipped) when numpy, venv/ensurepip or setuptools
and wheel are missing.
"""
import os
import shutil
import subprocess
import sys
import tempfile


def skip(why):
    print("skipped: " + why)
    sys.exit(77)


def main():
    root = os.path.abspath(sys.argv[1])
    for mod in ("numpy", "venv", "ensurepip", "setuptools", "wheel"):
        try:
            __import__(mod)
        except ImportError:
            skip("the Python module %s is not installed" % mod)
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="mixq-pyinstall-", dir=base)
    try:
        venv = os.path.join(tmp, "venv")
        py = os.path.join(venv, "bin", "python")
        # Build from a copy so that setuptools' build/ and *.egg-info stay out of the source tree.
        src = os.path.join(tmp, "src")
        shutil.copytree(os.path.join(root, "python"), src,
                        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
        pip_args = ["install", "--no-index", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
                    "-q", src]
        # Fast path: a venv without its own pip, filled by this interpreter's pip (--python, pip >= 22.3);
        # otherwise a venv with pip (ensurepip), which is slower.
        r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            skip("cannot create a venv: " + r.stdout.decode(errors="replace").strip())
        r = subprocess.run([sys.executable, "-m", "pip", "--python", py] + pip_args,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            print(r.stdout.decode(errors="replace").strip())
            print("(retrying with a venv that has its own pip)")
            shutil.rmtree(venv)
            r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                skip("cannot create a venv with pip: " + r.stdout.decode(errors="replace").strip())
            r = subprocess.run([py, "-m", "pip"] + pip_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            print(r.stdout.decode(errors="replace"))
            print("FAIL: pip install failed")
            return 1
        check = r"""
import os, sys, mixq, numpy
venv = sys.argv[1]
assert os.path.realpath(mixq.__file__).startswith(os.path.realpath(venv)), mixq.__file__
with mixq.open(sys.argv[2], verify=True) as f:
    t = f.tensors()[1]
    x = t.dequantize()
    assert x.dtype == numpy.float32 and x.shape == t.shape and numpy.isfinite(x).all()
    print(mixq.__version__, len(f), t.name, t.quant_type, x.shape)
"""
        golden = os.path.join(root, "testdata", "golden", "v1-int4-g64.mxq")
        r = subprocess.run([py, "-c", check, venv, golden], cwd=tmp, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        print(r.stdout.decode(errors="replace").strip())
        if r.returncode != 0:
            print("FAIL: the installed package does not work")
            return 1
        if os.path.exists(os.path.join(root, "python", "build")) or \
                any(n.endswith(".egg-info") for n in os.listdir(os.path.join(root, "python"))):
            print("FAIL: the install left build files in the source tree")
            return 1
        print("ok: pip install ./python in a --system-site-packages venv")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
