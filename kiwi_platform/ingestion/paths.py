"""Where a manifest's media path points, and how the tables name it.

Rules (README, "The manifest format"):
- a relative path starts at the batch's base folder (`--base-path`, run config `base_path`; by
  default the manifest's own folder) and must stay inside it: `../` or a symlink leading out is
  `path_escape`, so a manifest cannot pull arbitrary files in through a relative name;
- an absolute path is taken as written: the manifest's author named that file on purpose;
- `~` is not expanded (upstream's loaders do not either): `path_escape`, with a hint.

Tables store the path relative to the base (or, for an absolute path outside the base, as
written), never the machine's absolute location, so the same data ingested from a moved copy
gives the same table bytes (issue 16.9). The absolute origin is kept beside the table (origins.py).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from kiwi_platform.lib.quarantine import RowRejected


def stored_name(base: Path, cell: str) -> str:
    """The path as the tables record it: relative to `base` in POSIX form when it lies inside it."""
    normal = os.path.normpath(cell)
    if os.path.isabs(normal):
        try:
            return PurePosixPath(Path(normal).relative_to(base)).as_posix()
        except ValueError:
            return normal
    return PurePosixPath(Path(normal)).as_posix()


def resolve_media_path(base: Path, cell: str) -> Path:
    """The file a manifest cell names (see the module rules); raises RowRejected for path_escape."""
    if cell.startswith("~"):
        raise RowRejected(
            "path_escape", f"{cell!r} starts with '~', which is not expanded; write the absolute path", cell
        )
    if os.path.isabs(cell):
        try:
            return Path(cell).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise RowRejected("missing_file", f"{cell!r} cannot be resolved to a file ({exc})", cell) from None
    return resolve_inside(base, cell)


def resolve_inside(base: Path, relative: str) -> Path:
    """Resolve a relative manifest path; reject anything (symlinks too) leaving `base`."""
    if os.path.isabs(relative) or relative.startswith("~"):
        raise RowRejected("path_escape", f"{relative!r} is not a path relative to the base folder {base}", relative)
    base = base.resolve()
    candidate = base / relative
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, NUL byte, name too long
        raise RowRejected("missing_file", f"{relative!r} cannot be resolved to a file ({exc})", relative) from None
    if not resolved.is_relative_to(base):
        what = "a symlink that points" if candidate.is_symlink() or _has_symlink(base, relative) else "a path that goes"
        raise RowRejected("path_escape", f"{relative!r} is {what} outside the base folder {base}", relative)
    return resolved


def _has_symlink(base: Path, relative: str) -> bool:
    current = base
    for part in Path(relative).parts:
        current = current / part
        if current.is_symlink():
            return True
    return False
