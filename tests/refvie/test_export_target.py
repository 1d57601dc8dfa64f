"""The folder `kiwi export --out DIR` writes into: export never deletes what it did not write.

Fast tests of `refvie/export_target.py` alone (no store, no graph): a stand-in writer fills the
staging folder with row folders the way `export_batch` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.export_manifest import MANIFEST, read_manifest
from kiwi_platform.refvie.export_target import ExportTarget, stale_temps
from kiwi_platform.refvie.export_target_state import inspect

REPO = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, object]:
    """Everything under `root` without following symlinks: file bytes, link targets, folders."""
    seen: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[rel] = "dir"
            else:
                seen[rel] = path.read_bytes()
    return seen


def siblings(out: Path) -> set[str]:
    return {p.name for p in out.parent.iterdir()}


def export(out: Path, rows: int = 3, *, overwrite: bool = False, tag: str = "x", unreadable: Path | None = None):
    """Stand-in for export_batch: row folders with masks/ and meta.json, written through the staging folder.
    `unreadable`: on row 2, read this "source file" (a real OSError, as an unreadable store file gives)."""
    target = ExportTarget(out, overwrite=overwrite)
    with target.staging({"batch": "b", "rows": rows}) as tmp:
        for row in range(1, rows + 1):
            (tmp / str(row) / "masks").mkdir(parents=True)
            (tmp / str(row) / "masks" / "0000.png").write_bytes(f"mask {row} {tag}".encode())
            if row == 2 and unreadable is not None:
                unreadable.read_bytes()
            (tmp / str(row) / "meta.json").write_text(json.dumps({"row": row, "tag": tag}))
    return target


def test_new_folder_gets_rows_and_a_manifest_listing_them(tmp_path: Path):
    """Export into a folder that does not exist (parents included) creates it with one folder per row and
    kiwi-export.json listing exactly the files written; no temp folder is left beside it."""
    out = tmp_path / "a" / "b" / "out"
    target = export(out)
    assert target.outcome.replaced is None and target.outcome.moved_aside is None
    assert sorted(p.name for p in out.iterdir()) == ["1", "2", "3", MANIFEST]
    manifest = read_manifest(out)
    assert manifest["batch"] == "b" and manifest["rows"] == 3
    assert manifest["files"] == sorted(f"{r}/{f}" for r in (1, 2, 3) for f in ("masks/0000.png", "meta.json"))
    assert siblings(out) == {"out"}
    assert inspect(out).kind == "ours"


def test_user_folders_named_like_rows_survive(tmp_path: Path):
    """A non-empty --out that is not a previous export (here the user's own `1/` and `2/` folders) is
    refused with one line naming what is there; every file of the user's stays as it was."""
    out = tmp_path / "out"
    (out / "1").mkdir(parents=True)
    (out / "1" / "notes.txt").write_text("mine")
    (out / "2").mkdir()
    before = snapshot(out)
    with pytest.raises(KiwiUserError, match="not a previous kiwi export") as err:
        export(out)
    assert "\n" not in str(err.value) and "--overwrite" in str(err.value)
    assert snapshot(out) == before
    assert siblings(out) == {"out"}


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_file_or_symlink_named_like_a_row_is_refused_cleanly(tmp_path: Path, kind: str):
    """A file or a symlink named like a row in --out gives a one-line refusal (no crash); the file, the
    link and what the link points to are untouched."""
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    if kind == "file":
        (out / "2").write_text("a file called 2")
    else:
        (out / "2").symlink_to(elsewhere)
    before = snapshot(out)
    with pytest.raises(KiwiUserError, match="2"):
        export(out)
    assert snapshot(out) == before and elsewhere.read_text() == "keep me"


def test_out_under_a_file_or_at_a_file_is_a_one_line_error(tmp_path: Path):
    """`--out file/sub` and `--out file` name the file in one line and create nothing; a dangling
    symlink as --out is refused too rather than written through."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(KiwiUserError, match=f"{blocker} is a file, so no folder can be made under it"):
        export(blocker / "sub" / "deeper")
    with pytest.raises(KiwiUserError, match="is a file, not a folder"):
        export(blocker)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(KiwiUserError, match="does not exist"):
        export(tmp_path / "dangling")
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "file"]


def test_unwritable_place_is_a_one_line_error(tmp_path: Path):
    """An --out whose folder cannot be created (here under /sys, which refuses even root) is one line
    naming the folder and the reason."""
    if not Path("/sys").is_dir():
        pytest.skip("needs /sys")
    probe = Path("/sys/kiwi-export-test")
    with pytest.raises(KiwiUserError, match=f"cannot create the folder {probe}") as err:
        export(probe / "out")
    assert "\n" not in str(err.value)
    assert not probe.exists()


def test_re_export_replaces_only_our_previous_export_byte_identically(tmp_path: Path):
    """Exporting again into a previous export of ours replaces it without --overwrite; the same input
    gives byte-identical files; the previous export's files are gone and nothing is left beside it."""
    out = tmp_path / "out"
    export(out, rows=3)
    first = snapshot(out)
    target = export(out, rows=3)
    assert target.outcome.replaced["batch"] == "b" and target.outcome.kept is None
    assert snapshot(out) == first
    export(out, rows=2, tag="new")
    assert sorted(p.name for p in out.iterdir()) == ["1", "2", MANIFEST]  # row 3 of the old export is gone
    assert json.loads((out / "1" / "meta.json").read_text())["tag"] == "new"
    assert siblings(out) == {"out"}


def test_user_file_inside_a_previous_export_is_refused_then_moved_aside_with_overwrite(tmp_path: Path):
    """A previous export the user added a file to is not ours any more: refused by default; with
    --overwrite the whole folder is moved aside unchanged (user file included) and the new export
    takes its place."""
    out = tmp_path / "out"
    export(out)
    (out / "2" / "my-notes.txt").write_text("mine")
    before = snapshot(out)
    with pytest.raises(KiwiUserError, match="2/my-notes.txt"):
        export(out)
    assert snapshot(out) == before
    target = export(out, overwrite=True, tag="new")
    aside = target.outcome.moved_aside
    assert aside is not None and aside.parent == tmp_path and aside.name.startswith("out.replaced-")
    assert snapshot(aside) == before
    assert inspect(out).kind == "ours" and not (out / "2" / "my-notes.txt").exists()


def test_overwrite_moves_a_foreign_folder_aside_and_deletes_nothing(tmp_path: Path):
    """--overwrite on a folder of the user's (row-named folder, file and symlink) moves it aside to
    out.replaced-<time>, byte for byte, and puts the export at --out; the folder keeps its mode."""
    out = tmp_path / "out"
    (out / "1").mkdir(parents=True)
    (out / "1" / "data.bin").write_bytes(b"\x00\x01")
    (out / "2").write_text("file")
    (out / "3").symlink_to(out / "2")
    out.chmod(0o750)
    before = snapshot(out)
    target = export(out, overwrite=True)
    assert snapshot(target.outcome.moved_aside) == before
    assert inspect(out).kind == "ours" and (out.stat().st_mode & 0o777) == 0o750


def test_empty_folder_is_taken_over(tmp_path: Path):
    """An existing empty --out is used as if new (no --overwrite needed) and nothing is moved aside."""
    out = tmp_path / "out"
    out.mkdir()
    target = export(out)
    assert target.outcome.moved_aside is None and inspect(out).kind == "ours"
    assert siblings(out) == {"out"}


def test_forged_or_broken_manifest_does_not_make_a_folder_ours(tmp_path: Path):
    """A kiwi-export.json that is not ours (wrong kind, or listing paths outside the folder) does not let
    export replace the folder: it is refused and nothing outside or inside is deleted."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    for manifest in (
        {"kind": "something-else", "format": 1, "files": []},
        {"kind": "kiwi-export", "format": 1, "files": ["../victim.txt"]},
        "not json",
    ):
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        (out / MANIFEST).write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
        assert inspect(out).kind == "foreign", manifest
        with pytest.raises(KiwiUserError):
            export(out)
        assert victim.read_text() == "keep" and (out / MANIFEST).exists()


def test_out_may_not_be_contain_or_be_inside_the_kiwi_state(tmp_path: Path):
    """--out equal to, containing, or inside a protected folder (the store) is refused before anything
    is written, so --overwrite can never move the Kiwi state aside or write into the data repo."""
    store = tmp_path / "home" / "data"
    store.mkdir(parents=True)
    for out in (store, tmp_path / "home", store / "exports"):
        with pytest.raises(KiwiUserError, match="Kiwi state"):
            ExportTarget(out, overwrite=True, protected=[store])
    assert sorted(p.name for p in store.parent.iterdir()) == ["data"] and not any(store.iterdir())


def test_error_while_writing_leaves_the_target_untouched(tmp_path: Path):
    """A real error halfway (a source that cannot be read) is one line saying nothing was changed; the
    previous export is byte-identical, no temp folder remains, and parent folders it made are removed."""
    source = tmp_path / "src" / "clip.kclip"
    source.mkdir(parents=True)  # a folder where a file should be: reading it fails with IsADirectoryError
    out = tmp_path / "exports" / "out"
    export(out, rows=3)
    before = snapshot(out)
    with pytest.raises(KiwiUserError, match="changed nothing there") as err:
        export(out, rows=3, tag="new", unreadable=source)
    assert "\n" not in str(err.value) and "clip.kclip" in str(err.value)
    assert snapshot(out) == before
    assert siblings(out) == {"out"}
    with pytest.raises(KiwiUserError):
        export(tmp_path / "new" / "deeper" / "out", unreadable=source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "src"]


def test_unexpected_exception_while_writing_also_cleans_up(tmp_path: Path):
    """A bug (not an OSError) still propagates as itself, and still leaves no temp folder and the
    target as it was."""
    out = tmp_path / "out"
    target = ExportTarget(out)
    with pytest.raises(ZeroDivisionError), target.staging({"batch": "b"}) as tmp:
        (tmp / "1").mkdir()
        1 / 0  # noqa: B018
    assert list(tmp_path.iterdir()) == []


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from kiwi_platform.refvie.export_target import ExportTarget

    target = ExportTarget(Path(sys.argv[1]))
    with target.staging({"batch": "b", "rows": 10000}) as tmp:
        for row in range(1, 10001):
            (tmp / str(row)).mkdir()
            (tmp / str(row) / "meta.json").write_text("{}")
            if row == 5:
                print("halfway", flush=True)
            time.sleep(0.01)
    """
)


def test_sigkill_during_export_leaves_the_target_untouched(tmp_path: Path):
    """An export killed with SIGKILL in the middle (no cleanup can run) leaves the previous export at
    --out byte-identical, with no half-written folder in its place; the partial export sits only in a
    hidden temp folder beside it, which the next export reports and never mistakes for --out."""
    out = tmp_path / "out"
    export(out)
    before = snapshot(out)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "halfway"
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(out) == before
    leftovers = stale_temps(out)
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".out.") and (leftovers[0] / "1").is_dir()
    export(out, tag="after")
    assert stale_temps(out) == leftovers and inspect(out).kind == "ours"
