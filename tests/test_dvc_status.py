"""`dvc status` on the data repo trusts DVC's state database instead of re-reading the shards.

What users rely on: `kiwi dvc status` (and a bare `dvc status` in the data repo, as dvc.yaml
suggests) costs a stat per tracked file, not a read of every tracked byte, so it stays quick when
the batches hold gigabytes of shards; and a shard whose bytes changed is still reported.

Real git + DVC repo with a local remote in tmp. Hashing is observed by spying on DVC's own file
hashing function (`dvc_data.hashfile.hash.file_md5`) while DVC runs in this process; the spy's
positive control is the changed shard, which it must see hashed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.dvc_config import site_cache_dir

SHARD_BYTES = 1 << 20


@pytest.fixture
def repo(tmp_path: Path) -> DvcRepo:
    repo = DvcRepo(root=str(tmp_path / "data"), remote_url=str(tmp_path / "remote"))
    repo.ensure()
    return repo


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Paths of local files DVC hashes from now on (its in-memory `.dir` listings are left out)."""
    import dvc_data.hashfile.hash as dvc_hash

    seen: list[Path] = []
    real = dvc_hash.file_md5

    def spy(fname, *args, **kwargs):
        if "://" not in str(fname):
            seen.append(Path(fname).resolve())
        return real(fname, *args, **kwargs)

    monkeypatch.setattr(dvc_hash, "file_md5", spy)
    return seen


def _publish_shards(repo: DvcRepo, rel: str = "batches/b1/clips") -> Path:
    folder = repo.root_path / rel
    (folder / "clips").mkdir(parents=True)
    for i in range(3):
        (folder / "clips" / f"shard-{i:05d}.zip").write_bytes(bytes([i + 1]) * SHARD_BYTES)
    (folder / "table.parquet").write_bytes(b"table")
    repo.track(folder, "publish clips")
    return folder


def _replace_bytes(path: Path) -> None:
    """Rewrite a shard as the platform's writers do (temp file, then rename): same size, new bytes."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(b"\xee" * path.stat().st_size)
    os.replace(tmp, path)


def _bare_dvc(repo: DvcRepo, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`dvc ARGS` as a user types it in the data repo: DVC's CLI, no environment from the platform."""
    from dvc.cli import main

    monkeypatch.delenv("DVC_SITE_CACHE_DIR", raising=False)
    monkeypatch.chdir(repo.root_path)
    return main(list(args))


def test_clean_status_after_a_publish_reads_no_tracked_bytes(
    repo: DvcRepo, hashed: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Right after a publish, `kiwi dvc status` (`run_cli`) and a bare `dvc status` typed in the
    data repo both report it clean without hashing a tracked file: they share
    one state database, recorded in `.dvc/config.local`, so no DVC re-reads the shards."""
    _publish_shards(repo)
    hashed.clear()  # the publish itself hashes every file once: that is its job

    assert repo.run_cli(["status"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert _bare_dvc(repo, monkeypatch, "status") == 0
    assert "up to date" in capsys.readouterr().out

    assert hashed == [], f"clean status re-read tracked files: {hashed}"
    assert (site_cache_dir(repo.root_path) / "repo").is_dir()  # the state db lives in the data repo


def test_a_shard_with_new_bytes_is_reported_and_only_it_is_hashed(
    repo: DvcRepo, hashed: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A shard rewritten with different bytes of the same size is reported as a modified output by
    every status (`kiwi dvc status`, bare `dvc status`); DVC re-reads that shard, and only it,
    the other shards still count as unchanged from their stat alone."""
    folder = _publish_shards(repo)
    changed = folder / "clips" / "shard-00001.zip"
    _replace_bytes(changed)
    hashed.clear()

    assert repo.run_cli(["status"]) == 0
    assert "modified:" in capsys.readouterr().out
    assert _bare_dvc(repo, monkeypatch, "status") == 0
    assert "modified:" in capsys.readouterr().out

    assert set(hashed) == {changed.resolve()}, hashed


@pytest.mark.slow  # two `kiwi` processes
def test_kiwi_dvc_status_names_the_changed_output(tmp_path: Path) -> None:
    """`kiwi dvc status` in a home prints DVC's own report: clean after a publish, the folder as
    modified once one of its shards changed, exit 0 both times."""
    home = tmp_path / "home"
    repo = DvcRepo(root=str(home / "data"), remote_url=str(home / "dvc-remote"))
    repo.ensure()
    folder = _publish_shards(repo)
    env = {**os.environ, "KIWI_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    for var in ("KIWI_DATA_DIR", "KIWI_DVC_REMOTE", "DVC_SITE_CACHE_DIR"):
        env.pop(var, None)

    def kiwi_dvc_status() -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "kiwi_platform", "dvc", "status"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    clean = kiwi_dvc_status()
    assert clean.returncode == 0, clean.stderr
    assert "up to date" in clean.stdout
    _replace_bytes(folder / "clips" / "shard-00002.zip")
    dirty = kiwi_dvc_status()
    assert dirty.returncode == 0, dirty.stderr
    assert "batches/b1/clips.dvc" in dirty.stdout and "modified:" in dirty.stdout, dirty.stdout
