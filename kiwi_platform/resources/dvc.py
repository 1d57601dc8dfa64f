"""DVC stores and hashes the data; Dagster orchestrates.

The data repo is `KIWI_DATA_DIR` (default `.kiwi/data`): its own git repository with DVC inside,
so DVC's metadata and history never dirty the project checkout. It is created on first use with
a local-directory remote (`KIWI_DVC_REMOTE`, default `.kiwi/dvc-remote`); point that at s3://...
or gs://... for a team. The project's top-level `dvc.yaml` is installed into the data repo, so
`dvc status` / `dvc repro` there reproduce the declared datasets.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

from kiwi_platform.lib.locks import file_lock
from kiwi_platform.settings import PROJECT_ROOT

# (repo, remote url) -> the .dvc/config this process left after configuring the remote
_remote_ready: dict[tuple[str, str], bytes] = {}


class DvcError(RuntimeError):
    """A DVC or git command failed; the message holds the command and its stderr."""


@dataclass(frozen=True)
class TrackedOutput:
    path: str  # relative to the data repo
    md5: str  # DVC's md5 of the tracked file or directory
    files: int
    size: int
    git_rev: str  # data-repo commit that records this version


class DvcRepo(dg.ConfigurableResource):
    """A DVC repository (in its own git repo) with one default remote."""

    root: str
    remote_url: str
    push: bool = True

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def root_path(self) -> Path:
        return Path(self.root)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DVC_NO_ANALYTICS", "1")
        env["DVC_SITE_CACHE_DIR"] = str(self.root_path / ".dvc" / "tmp" / "site-cache")
        # stages in dvc.yaml call `kiwi`: make the running interpreter's scripts reachable
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.setdefault("GIT_AUTHOR_NAME", "kiwi-platform")
        env.setdefault("GIT_AUTHOR_EMAIL", "kiwi@localhost")
        env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
        env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
        return env

    def _run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), cwd=cwd or self.root_path, env=self.env(), capture_output=True, text=True)
        if check and proc.returncode != 0:
            cmd = " ".join(a if a != sys.executable else "python" for a in args)
            raise DvcError(f"`{cmd}` failed in {cwd or self.root_path}: {(proc.stderr or proc.stdout).strip()[-800:]}")
        return proc

    def dvc(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(sys.executable, "-m", "dvc", *args, cwd=cwd, check=check)

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self._run("git", *args, cwd=cwd, check=check)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise DVC/git work: parallel batch runs share one repo and one index.

        Waiting here is the normal case when batches run in parallel, so it is not announced.
        """
        self.root_path.mkdir(parents=True, exist_ok=True)
        lock = self.root_path.parent / f".{self.root_path.name}.dvc.lock"
        with file_lock(lock, what=f"the DVC data repository {self.root_path}", announce_after=None):
            yield

    # -- lifecycle --------------------------------------------------------------------------
    def ensure(self) -> None:
        """Create git + DVC + the default remote + dvc.yaml on first use; cheap when present."""
        with self.locked():
            self._ensure_unlocked()

    def _ensure_unlocked(self) -> None:
        root = self.root_path
        if not (root / ".git").exists():
            self.git("init", "-q", "-b", "main")
            self.git("config", "user.name", "kiwi-platform")
            self.git("config", "user.email", "kiwi@localhost")
        if not (root / ".dvc").exists():
            self.dvc("init", "-q")
            self.dvc("config", "core.analytics", "false")
            self.dvc("config", "core.autostage", "true")
        self._ensure_remote()
        self._install_dvc_yaml()
        ignore = root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# machine-local batch registry (absolute manifest paths)\n/registry/\n")
        setup_files = [
            f for f in (".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", ".gitignore") if (root / f).exists()
        ]
        if self.git("status", "--porcelain", "--", *setup_files).stdout.strip():
            self.git("add", "--", *setup_files)
            self.git("commit", "-q", "-m", "kiwi: set up data repository", "--", *setup_files)

    def _ensure_remote(self) -> None:
        """Point the `local` default remote at `remote_url`: two dvc calls, skipped while the config is
        as this process left it (every asset publish calls this, holding the repository lock)."""
        key, config = (str(self.root_path.resolve()), self.remote_url), self.root_path / ".dvc" / "config"
        if config.exists() and _remote_ready.get(key) == config.read_bytes():
            return
        current = self.dvc("remote", "list", check=False).stdout.split()
        if "local" in current:
            self.dvc("remote", "modify", "local", "url", self.remote_url)
        else:
            if "://" not in self.remote_url:
                Path(self.remote_url).mkdir(parents=True, exist_ok=True)
            self.dvc("remote", "add", "-d", "local", self.remote_url)
        _remote_ready[key] = config.read_bytes()

    def _install_dvc_yaml(self) -> None:
        """Copy the project's dvc.yaml (the declared datasets) into the data repo when it changed."""
        template = PROJECT_ROOT / "dvc.yaml"
        target = self.root_path / "dvc.yaml"
        if template.exists() and (not target.exists() or target.read_bytes() != template.read_bytes()):
            shutil.copyfile(template, target)

    # -- versioning -------------------------------------------------------------------------
    def track(self, path: Path, message: str) -> TrackedOutput:
        """`dvc add` a file or folder, commit the .dvc file in the data repo, push to the remote."""
        with self.locked():
            self._ensure_unlocked()
            rel = os.path.relpath(Path(path).resolve(), self.root_path.resolve())
            if rel.startswith(".."):
                raise DvcError(f"{path} is outside the data repository {self.root_path}")
            self.dvc("add", rel)
            out = yaml.safe_load((self.root_path / f"{rel}.dvc").read_text())["outs"][0]
            self._commit_metadata(message)
            if self.push:
                self.dvc("push", "-q", f"{rel}.dvc")
            rev = self.git("rev-parse", "HEAD").stdout.strip()
        return TrackedOutput(
            path=rel, md5=out["md5"], files=int(out.get("nfiles", 1)), size=int(out.get("size", 0)), git_rev=rev
        )

    def _commit_metadata(self, message: str) -> None:
        """Commit DVC's pointer files (.dvc, dvc.lock, .gitignore) and nothing else."""
        changed = []
        for line in self.git("status", "--porcelain", "-uall").stdout.splitlines():
            path = line[3:].strip().strip('"')
            if path.endswith((".dvc", ".gitignore", "dvc.lock", "dvc.yaml")):
                changed.append(path)
        if changed:
            self.git("add", "--", *changed)
            self.git("commit", "-q", "-m", message, "--", *changed)

    def status(self) -> str:
        with self.locked():
            return self.dvc("status").stdout

    def repro(self, stage: str, message: str) -> str:
        """`dvc repro STAGE` from the data repo's dvc.yaml, commit dvc.lock, push the outputs."""
        with self.locked():
            self._ensure_unlocked()
            self.dvc("repro", stage)
            self._commit_metadata(message)
            if self.push:
                self.dvc("push", "-q", stage)
            return self.git("rev-parse", "HEAD").stdout.strip()
