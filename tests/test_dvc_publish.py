"""DVC publishing of an asset folder (`DvcRepo.track`) in a real git + DVC repo with a local remote.

What users rely on: every publish versions and pushes the folder, without starting DVC processes
or rewriting the remote configuration each time (the fixed cost per asset per batch), the
workspace and the DVC cache share bytes instead of holding two copies, and a folder can only be
tracked once (never inside, or around, a tracked one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kiwi_platform.resources.dvc import DvcError, DvcRepo


def _folder(root: Path, rel: str, seed: str, files: int = 3) -> Path:
    folder = root / rel
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"clip_{i}.bin").write_bytes(f"{seed}-{i}".encode() * 500)
    (folder / "table.parquet").write_bytes(f"table {seed}".encode())
    return folder


@pytest.fixture
def repo(tmp_path: Path) -> DvcRepo:
    repo = DvcRepo(root=str(tmp_path / "data"), remote_url=str(tmp_path / "remote"))
    repo.ensure()
    return repo


def _dvc_cli(repo: DvcRepo, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo.root_path, env=repo.env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_publish_starts_no_dvc_process_and_leaves_the_config_alone(repo: DvcRepo, monkeypatch) -> None:
    """A publish runs DVC in-process (git only for the commit) and does not touch .dvc/config,
    yet the pointer is committed and the data is in the remote (`dvc status -c` in sync)."""
    config = (repo.root_path / ".dvc" / "config").read_bytes()
    commands: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(args, *a, **kw):
        commands.append([str(x) for x in args])
        return real_run(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", recording_run)
    tracked = repo.track(_folder(repo.root_path, "batches/b1/raw", "one"), "publish raw")
    monkeypatch.setattr(subprocess, "run", real_run)

    assert [c for c in commands if "dvc" in c[1:3]] == [], commands
    assert {c[0] for c in commands} == {"git"}
    assert (repo.root_path / ".dvc" / "config").read_bytes() == config
    assert tracked.md5.endswith(".dir") and tracked.files == 4
    assert repo.git("status", "--porcelain").stdout.strip() == ""
    assert repo.git("show", "--stat", "HEAD").stdout.count("batches/b1/raw.dvc") == 1
    assert "in sync" in _dvc_cli(repo, "status", "-c", "batches/b1/raw.dvc")


def test_workspace_and_cache_share_bytes(repo: DvcRepo) -> None:
    """After a publish each workspace file is the cache's object (same inode), not a second copy."""
    folder = _folder(repo.root_path, "batches/b1/clips", "linked")
    repo.track(folder, "publish clips")
    cache = repo.root_path / ".dvc" / "cache" / "files" / "md5"
    objects = {p.stat().st_ino for p in cache.rglob("*") if p.is_file()}
    for f in folder.iterdir():
        assert f.stat().st_ino in objects, f
        assert f.stat().st_nlink >= 2, f


def test_republish_updates_the_pointer_among_many_tracked_folders(repo: DvcRepo) -> None:
    """With other folders tracked, publishing a changed folder again updates its own .dvc file
    (new md5, committed), and publishing it unchanged keeps the md5 and adds no commit."""
    for i in range(3):
        repo.track(_folder(repo.root_path, f"batches/old{i}/raw", f"old{i}"), f"old {i}")
    folder = _folder(repo.root_path, "batches/b2/raw", "first")
    first = repo.track(folder, "first")
    again = repo.track(folder, "unchanged")
    assert again.md5 == first.md5 and again.git_rev == first.git_rev
    (folder / "extra.bin").write_bytes(b"a new file")
    changed = repo.track(folder, "changed")
    pointer = yaml.safe_load((repo.root_path / "batches/b2/raw.dvc").read_text())["outs"][0]
    assert changed.md5 != first.md5 and pointer["md5"] == changed.md5 and pointer["nfiles"] == 5
    assert changed.git_rev != first.git_rev and repo.git("status", "--porcelain").stdout.strip() == ""
    assert "up to date" in _dvc_cli(repo, "status")


def test_a_folder_inside_or_around_a_tracked_one_is_refused(repo: DvcRepo) -> None:
    """DVC allows one owner per file: tracking inside a tracked folder, or a folder holding one,
    fails with one clear message and leaves the repository clean."""
    outer = _folder(repo.root_path, "batches/b3/raw", "outer")
    repo.track(outer, "outer")
    inner = _folder(repo.root_path, "batches/b3/raw/sub", "inner")
    with pytest.raises(DvcError, match="inside batches/b3/raw, which DVC already tracks"):
        repo.track(inner, "inner")
    with pytest.raises(DvcError, match="holds batches/b3/raw.dvc, which DVC already tracks"):
        repo.track(repo.root_path / "batches" / "b3", "around")
    assert repo.git("status", "--porcelain").stdout.strip() == ""


def test_changing_the_remote_is_configured_once_and_used(repo: DvcRepo, tmp_path: Path) -> None:
    """Pointing KIWI_DVC_REMOTE elsewhere rewrites and commits .dvc/config once; the next publish
    pushes there."""
    moved = DvcRepo(root=repo.root, remote_url=str(tmp_path / "remote-2"))
    moved.ensure()
    config = (repo.root_path / ".dvc" / "config").read_text()
    assert str(tmp_path / "remote-2") in config and repo.git("status", "--porcelain").stdout.strip() == ""
    moved.track(_folder(repo.root_path, "batches/b4/raw", "moved"), "to the new remote")
    assert any((tmp_path / "remote-2").rglob("*.dir"))
    assert not any((tmp_path / "remote").rglob("*.dir"))
    assert (repo.root_path / ".dvc" / "config").read_text() == config
