"""vmlab's shared pieces: its two exceptions and small helpers (tests/vm/README.md)."""

import os
import subprocess


class SetupError(Exception):
    """A host-side problem (kernel fetch, bad argument, missing library): no VM ran."""


class SkipError(Exception):
    """An optional piece (--vfio-noiommu's vfio.ko) cannot be built on this host: exit 77."""


def log(msg):
    print(f"vmlab: {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def makedir(parent, name):
    path = os.path.join(parent, name)
    os.makedirs(path, exist_ok=True)
    return path
