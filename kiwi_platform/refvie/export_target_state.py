"""Checking the folder `kiwi export --out` names before any work: where it is, and what is there now.

Why apart from the swap: these are the refusals (a file, a dangling symlink, an unwritable place,
the Kiwi state, a folder that holds things export did not write) and each must be a one-line user
error raised before anything is generated or moved. They only read the filesystem; putting a
finished export in place is `kiwi_platform.refvie.export_target`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.export_manifest import MANIFEST, read_manifest, walk

_EXAMPLES = 3


@dataclass
class TargetState:
    """What is at the target now: `absent`, `empty`, `ours` (a previous export, nothing else) or `foreign`."""

    path: Path
    kind: str
    previous: dict | None = None  # the previous export's kiwi-export.json, when there is a valid one
    foreign: list[str] = field(default_factory=list)  # a few entries export did not write
    foreign_count: int = 0


def resolve_target(out: Path, protected: Sequence[Path] = ()) -> Path:
    """The absolute folder `--out` names (symlinks followed), or a KiwiUserError saying why it cannot be one."""
    out = Path(os.path.abspath(Path(out).expanduser()))
    for path in [*reversed(out.parents), out]:  # down from /, up to the first one that does not exist
        if path.is_symlink() and not path.exists():
            raise KiwiUserError(f"--out {out}: {path} is a symlink to {os.readlink(path)}, which does not exist")
        if not path.exists():
            break
        if path == out and not path.is_dir():
            raise KiwiUserError(f"--out {out} is a file, not a folder; choose another --out")
        if not path.is_dir():
            raise KiwiUserError(
                f"--out {out}: {path} is a file, so no folder can be made under it; choose another --out"
            )
    out = out.resolve()
    if out.parent == out:
        raise KiwiUserError(f"--out {out} is the root of the filesystem; choose a folder of its own")
    base = next(p for p in out.parents if p.exists())  # where the temp folder and missing parents go
    if not os.access(base, os.W_OK | os.X_OK):
        raise KiwiUserError(f"--out {out}: {base} is not writable; choose another --out")
    for keep in protected:
        keep = Path(keep).resolve()
        if out == keep or keep.is_relative_to(out) or out.is_relative_to(keep):
            raise KiwiUserError(
                f"--out {out} would mix the export with the Kiwi state at {keep}; choose a folder outside it"
            )
    return out


def inspect(out: Path) -> TargetState:
    """Classify what is at `out` (already resolved). Reads the tree only when it claims to be ours."""
    try:
        if not out.exists():
            return TargetState(out, "absent")
        top = sorted(p.name for p in out.iterdir())
        if not top:
            return TargetState(out, "empty")
        previous = read_manifest(out)
        if previous is None:
            return TargetState(out, "foreign", foreign=top[:_EXAMPLES], foreign_count=len(top))
        files, dirs, others = walk(out)
    except OSError as exc:
        raise KiwiUserError(f"--out {out}: cannot read what is there ({exc.strerror or exc})") from exc
    listed = set(previous["files"]) | {MANIFEST}
    listed_dirs = {str(p) for f in listed for p in PurePosixPath(f).parents if str(p) != "."}
    foreign = sorted((files - listed) | (dirs - listed_dirs) | others)
    if foreign:
        return TargetState(out, "foreign", previous, foreign[:_EXAMPLES], len(foreign))
    return TargetState(out, "ours", previous)


def refusal(state: TargetState) -> str:
    """The one-line reason a folder is not taken over without --overwrite."""
    more = state.foreign_count - len(state.foreign)
    examples = ", ".join(state.foreign) + (f" and {more} more" if more > 0 else "")
    if state.previous is not None:
        return (
            f"--out {state.path} holds a previous export plus {state.foreign_count} entries export did not write"
            f" ({examples}); move them out, or pass --overwrite to move the whole folder aside"
        )
    return (
        f"--out {state.path} is not empty and is not a previous kiwi export (it holds {examples}); choose a new"
        " or empty folder, or pass --overwrite to move its contents aside (nothing is deleted)"
    )
