"""DVC's status answer keyed from the data repo's root, whatever directory this process is in.

Why its own module: `Repo.status()` names each `.dvc` file or stage by its address relative to the
current directory (`../../home/data/batches/b1/clips.dvc`), which in a Dagster or CLI process is
not the data repo. DvcRepo runs DVC in-process without changing directory (other threads share
it), so the keys are rewritten here to the form `dvc status` prints at the repo's root.
"""

from __future__ import annotations

import os
from pathlib import Path


def address_from_root(address: str, root: Path, cwd: str | None = None) -> str:
    """`batches/b1/clips.dvc` for a `.dvc` file, `name` for a stage of the root dvc.yaml,
    `sub/dvc.yaml:name` for one elsewhere (DVC's own addresses, as seen from `root`)."""
    path, sep, name = address.rpartition(":") if ":" in address else (address, "", "")
    rel = os.path.relpath(os.path.abspath(os.path.join(cwd or os.getcwd(), path)), os.path.abspath(root))
    if sep and rel == "dvc.yaml":
        return name
    return f"{rel}{sep}{name}"


def status_from_root(status: dict, root: Path) -> dict:
    """`Repo.status()`'s dict with every key as `address_from_root` gives it (values unchanged)."""
    cwd = os.getcwd()
    return {address_from_root(address, root, cwd): changes for address, changes in status.items()}
