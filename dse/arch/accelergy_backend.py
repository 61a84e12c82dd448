"""Accelergy itself, when it is installed and configured: the preferred energy source.

"Configured" means the ``accelergy`` package and command are present and
``DSE_ACCELERGY_COMPONENTS`` names a folder of compound-component YAMLs (e.g. the exercises'
``components/``) for the classes the design uses; the plug-ins are whatever Accelergy's own
config lists. dse writes the design in Timeloop's native form, runs ``accelergy`` on it and reads
back the ERT. Not exercised in this environment (no Accelergy here), so this path is kept to this
one small file.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from dse.arch.ert import apply_ert, read_ert
from dse.arch.native import write_native
from dse.arch.spec import Arch
from dse.errors import InputError

ENV = "DSE_ACCELERGY_COMPONENTS"


def available() -> bool:
    components = os.environ.get(ENV)
    return bool(components and Path(components).is_dir()
                and importlib.util.find_spec("accelergy") is not None
                and shutil.which("accelergy"))


def estimate(arch: Arch) -> Arch:
    """Run Accelergy on ``arch``; energies come back with energy_source="accelergy"."""
    components = sorted(Path(os.environ[ENV]).glob("*.y*ml"))
    with tempfile.TemporaryDirectory(prefix="dse-accelergy-") as tmp:
        spec = write_native(arch, Path(tmp) / "arch.yaml", keys="underscore")
        cmd = ["accelergy", str(spec), *map(str, components), "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        ert_files = sorted(Path(tmp).glob("*ERT.yaml"))
        if done.returncode != 0 or not ert_files:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no ERT written"]
            raise InputError(f"accelergy failed: {tail[0]}", field=ENV)
        return apply_ert(arch, read_ert(ert_files[0]), source="accelergy")
