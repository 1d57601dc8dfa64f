"""The folder `kiwi export --out DIR` writes: never delete what export did not write.

Why a module of its own: `--out` names a user's folder. Export used to write row folders straight
into it and remove whatever already had a row's name, so a user's `3/` folder vanished silently and
a file named `3` crashed the command. The rules here:

* The export is written whole into a hidden temp folder beside the target (same filesystem) and
  renamed into place only once complete; an error or a kill leaves the target exactly as it was.
* The target is taken over only when it is absent, empty, or a previous export of ours: a folder
  whose `kiwi-export.json` (written last by every export) lists every file in it. Replacing a
  previous export removes exactly the files its `kiwi-export.json` lists, nothing else.
* Anything else is refused, unless `overwrite`: then the whole folder is moved aside, unchanged,
  to `<name>.replaced-<time>` beside it and kept; export never deletes it.
* A target that is (or is under) a file, a dangling symlink, an unwritable place, or a folder that
  is, contains, or lies inside the Kiwi state (store, Dagster home, ...) is a one-line user error.

This module puts a finished export in place (staging, the swap, moving aside, removing a previous
export's files); checking the target beforehand is `export_target_state`, and the file list that
makes a folder ours is `export_manifest`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import UMASK
from kiwi_platform.refvie.export_manifest import MANIFEST, write_manifest
from kiwi_platform.refvie.export_target_state import TargetState, inspect, refusal, resolve_target

TMP_MARK = ".kiwi-export-tmp-"  # temp folders are named f".{name}{TMP_MARK}<random>"
OLD_MARK = ".kiwi-export-old-"  # a previous export of ours, while its listed files are removed


@dataclass
class Outcome:
    """What putting the export in place did to what was there before."""

    replaced: dict | None = None  # the previous export's kiwi-export.json
    moved_aside: Path | None = None  # where --overwrite moved a folder that was not ours
    kept: Path | None = None  # a previous export whose folder still held something after its files went


def stale_temps(out: Path) -> list[Path]:
    """Temp folders beside `out` left by an export that was killed (or is still running): a partial export,
    or a previous one killed between being moved off `out` and being removed."""
    try:
        return sorted([*out.parent.glob(f".{out.name}{TMP_MARK}*"), *out.parent.glob(f".{out.name}{OLD_MARK}*")])
    except OSError:
        return []


class ExportTarget:
    """One export's target: checked on creation (before any work), filled through `staging()`."""

    def __init__(self, out: Path, *, overwrite: bool = False, protected: Sequence[Path] = ()) -> None:
        self.path = resolve_target(out, protected)
        self.overwrite = overwrite
        self.outcome: Outcome | None = None
        self.check()

    def check(self) -> TargetState:
        state = inspect(self.path)
        if state.kind == "foreign" and not self.overwrite:
            raise KiwiUserError(refusal(state))
        return state

    @contextlib.contextmanager
    def staging(self, header: dict) -> Iterator[Path]:
        """Yield an empty temp folder beside the target; on success list its files in kiwi-export.json
        (with `header`) and put it in place. On any error it is removed, and so are the parent folders
        this call created; an OSError becomes a one-line KiwiUserError."""
        created = _make_parents(self.path.parent)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}{TMP_MARK}", dir=self.path.parent))
        except OSError as exc:
            _remove_created(created)
            raise KiwiUserError(
                f"--out {self.path}: cannot write in {self.path.parent} ({exc.strerror or exc})"
            ) from exc
        try:
            yield tmp
            write_manifest(tmp, header)
            self.outcome = self._swap(tmp)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)  # all of it is this export's own
            _remove_created(created)
            if isinstance(exc, OSError):
                raise KiwiUserError(f"export to {self.path} failed and changed nothing there: {exc}") from exc
            raise

    def _swap(self, tmp: Path) -> Outcome:
        state = self.check()  # again: the folder may have changed while the export was written
        mode = stat.S_IMODE(self.path.stat().st_mode) if state.kind != "absent" else 0o777 & ~UMASK
        os.chmod(tmp, mode)  # mkdtemp makes 0700; the export is shared like the folder it replaces
        if state.kind in ("absent", "empty"):
            os.rename(tmp, self.path)  # replaces an empty folder atomically; fails if it filled up meanwhile
            return Outcome()
        if state.kind == "ours":
            old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}{OLD_MARK}", dir=self.path.parent))
        else:
            old = _reserve_aside(self.path)
        try:
            os.rename(self.path, old)  # onto the empty reserved folder: atomic
        except BaseException:
            old.rmdir()
            raise
        try:
            os.rename(tmp, self.path)
        except BaseException:
            os.rename(old, self.path)  # put back what was there
            raise
        if state.kind == "foreign":
            return Outcome(moved_aside=old)
        leftover = remove_listed(old, state.previous["files"])
        return Outcome(replaced=state.previous, kept=old if leftover else None)


def remove_listed(folder: Path, files: Sequence[str]) -> bool:
    """Remove the regular files `files` lists (plus kiwi-export.json), then the folders left empty.
    Returns True when `folder` still holds something (it is then kept)."""
    listed = set(files) | {MANIFEST}
    for rel in listed:
        path = folder / rel
        with contextlib.suppress(OSError):
            if stat.S_ISREG(path.lstat().st_mode):
                path.unlink()
    dirs = {p for f in listed for p in PurePosixPath(f).parents if str(p) != "."}
    for rel in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            (folder / rel).rmdir()  # only when empty
    try:
        folder.rmdir()
    except OSError:
        return True
    return False


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p `folder`; returns the folders it created (deepest last), so a failed export can remove them."""
    missing = []
    for path in [folder, *folder.parents]:
        if path.exists():
            break
        missing.append(path)
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_created(created)
            raise KiwiUserError(f"--out: cannot create the folder {path} ({exc.strerror or exc})") from exc
        created.append(path)
    return created


def _remove_created(created: list[Path]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()  # only when still empty: something else may have been put there meanwhile


def _reserve_aside(path: Path) -> Path:
    """A new empty folder `<name>.replaced-<time>[-n]` beside `path`, for --overwrite to move `path` onto."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        candidate = path.with_name(f"{path.name}.replaced-{stamp}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise KiwiUserError(f"--out {path}: could not find a free name to move it aside to")
