"""DVC stores and hashes the data; Dagster orchestrates.

The data repo is `KIWI_DATA_DIR` (default `.kiwi/data`): its own git repository with DVC inside,
so DVC's metadata and history never dirty the project checkout. It is created on first use with
a local-directory remote (`KIWI_DVC_REMOTE`, default `.kiwi/dvc-remote`); point that at s3://...
or gs://... for a team. The project's top-level `dvc.yaml` is installed into the data repo, so
`dvc status` / `dvc repro` there reproduce the declared datasets.

A stage is installed only once this repo has a reason to know it: it was reproduced here
(`repro`, or it is in `dvc.lock`), or the platform declared it with its real inputs
(`declare_stage`, e.g. the synthetic demo set with the demo clips it reads). A fresh home
therefore reports no `deleted` outputs for datasets it never made.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import yaml

from kiwi_platform.lib.files import write_text_atomic
from kiwi_platform.lib.locks import file_lock
from kiwi_platform.resources.dvc_config import (
    CACHE_TYPE,
    environ_applied,
    remote_configured,
    site_cache_dir,
    state_configured,
)
from kiwi_platform.resources.dvc_yaml import install_dvc_yaml, set_params
from kiwi_platform.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from dvc.repo import Repo

#: machine-local files in the data repo (absolute paths): never committed
_LOCAL_ONLY = (
    "# machine-local: batch registry and ingestion origins (absolute paths)",
    "/registry/",
    "/batches/*/*.origin.json",
)


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
        env["DVC_SITE_CACHE_DIR"] = str(site_cache_dir(self.root_path))  # also in .dvc/config.local
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

    def _environ(self, keys: tuple[str, ...] | None = None) -> contextlib.AbstractContextManager[None]:
        """`env()` (or only `keys` of it) in this process's environment while DVC runs in it."""
        wanted = self.env()
        return environ_applied({k: wanted[k] for k in keys or wanted})

    @contextlib.contextmanager
    def _repo(self) -> Iterator[Repo]:
        """DVC in this process (its Python API): no interpreter start-up or DVC import per command."""
        from dvc.exceptions import DvcException
        from dvc.repo import Repo

        try:
            with self._environ(("DVC_NO_ANALYTICS", "DVC_SITE_CACHE_DIR")), Repo(str(self.root_path)) as repo:
                yield repo
        except DvcException as exc:
            raise DvcError(f"DVC failed in {self.root_path}: {exc}") from None

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
        self._ensure_config()
        self._install_dvc_yaml()
        ignore = root / ".gitignore"
        text = ignore.read_text() if ignore.exists() else ""
        missing = [line for line in _LOCAL_ONLY if line not in text.splitlines()]
        if missing:
            write_text_atomic(ignore, text + "".join(line + "\n" for line in missing))
        self._commit_setup(
            "kiwi: set up data repository", ".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", ".gitignore"
        )

    def _ensure_config(self) -> None:
        """Point the `local` default remote at `remote_url`, make the cache link instead of copy, and
        keep DVC's state database in the repo for every DVC that opens it (`dvc_config`).

        Read from `.dvc/config*` without starting DVC; written (in-process) only when it differs, i.e.
        once at set-up and again when `KIWI_DVC_REMOTE` changes or the repo moves, never per publish.
        """
        remote_ok, state_ok = remote_configured(self.root_path, self.remote_url), state_configured(self.root_path)
        if remote_ok and state_ok:
            return
        if "://" not in self.remote_url:
            Path(self.remote_url).mkdir(parents=True, exist_ok=True)
        with self._repo() as repo:
            if not remote_ok:
                with repo.config.edit("repo") as conf:
                    conf["core"]["remote"] = "local"
                    conf["remote"]["local"] = {**conf["remote"].get("local", {}), "url": self.remote_url}
                    conf["cache"]["type"] = CACHE_TYPE
            if not state_ok:
                with repo.config.edit("local") as conf:
                    conf["core"]["site_cache_dir"] = str(site_cache_dir(self.root_path))

    def _install_dvc_yaml(self, activate: str | None = None, declare: dict[str, dict] | None = None) -> None:
        """Write the data repo's dvc.yaml (see `dvc_yaml.install_dvc_yaml`) when it changed."""
        install_dvc_yaml(PROJECT_ROOT / "dvc.yaml", self.root_path, activate, declare)

    def declare_stage(self, name: str, stage: dict, params: dict | None = None) -> None:
        """Install (or update) a stage defined in code, with its parameters under `name` in params.yaml.

        Used for stages whose inputs are machine-local paths (the demo clips, the generator's code),
        which the project's dvc.yaml cannot name. Committed in the data repo with the setup files.
        """
        with self.locked():
            self._ensure_unlocked()
            self._install_dvc_yaml(declare={name: stage})
            if params is not None:
                set_params(self.root_path / "params.yaml", name, params)
            self._commit_setup(f"kiwi: declare stage {name}", "dvc.yaml", "params.yaml")

    def _commit_setup(self, message: str, *files: str) -> None:
        present = [f for f in files if (self.root_path / f).exists()]
        if present and self.git("status", "--porcelain", "--", *present).stdout.strip():
            self.git("add", "--", *present)
            self.git("commit", "-q", "-m", message, "--", *present)

    # -- versioning -------------------------------------------------------------------------
    def track(self, path: Path, message: str) -> TrackedOutput:
        """`dvc add` a file or folder, commit the .dvc file in the data repo, push to the remote.

        DVC runs in this process, and its whole-repo graph check is skipped: it parses every tracked
        `.dvc` file, so each publish would cost more the more batches exist. `_check_overlap` does
        the one check that matters here (no tracked folder above or below this one) in O(depth).
        """
        with self.locked():
            self._ensure_unlocked()
            rel = os.path.relpath(Path(path).resolve(), self.root_path.resolve())
            if rel.startswith(".."):
                raise DvcError(f"{path} is outside the data repository {self.root_path}")
            self._check_overlap(rel)
            with self._repo() as repo:
                self._narrow(repo, rel)
                repo.add(str(self.root_path / rel))
                out = yaml.safe_load((self.root_path / f"{rel}.dvc").read_text())["outs"][0]
                self._commit_metadata(message)
                if self.push:
                    repo.push(targets=[str(self.root_path / f"{rel}.dvc")])
            rev = self.git("rev-parse", "HEAD").stdout.strip()
        return TrackedOutput(
            path=rel, md5=out["md5"], files=int(out.get("nfiles", 1)), size=int(out.get("size", 0)), git_rev=rev
        )

    def _narrow(self, repo: Repo, rel: str) -> None:
        """Let `repo.add(rel)` see only the files that can own `rel`: its own `.dvc` file (a re-publish
        updates it) and dvc.yaml (a pipeline output is refused, as DVC refuses it), not every one."""
        from dvc.exceptions import OutputNotFoundError
        from dvc.repo import Repo as DvcApi
        from dvc.repo.index import Index

        owners = [self.root_path / f for f in (f"{rel}.dvc", "dvc.yaml") if (self.root_path / f).exists()]
        owned = list(Index.from_indexes(repo, [Index.from_file(repo, str(f)) for f in owners]).outs)

        def find_outs_by_path(path, outs=None, recursive=False, strict=True):
            if not (outs or owned):  # DVC reads an empty list as "all of them"
                raise OutputNotFoundError(path, repo)
            return DvcApi.find_outs_by_path(repo, path, outs=outs or owned, recursive=recursive, strict=strict)

        repo.find_outs_by_path = find_outs_by_path
        repo._skip_graph_checks = True

    def _check_overlap(self, rel: str) -> None:
        """Refuse to track a folder inside, or around, one DVC already tracks (one owner per file)."""
        parts = Path(rel).parts
        for depth in range(1, len(parts)):
            above = self.root_path.joinpath(*parts[:depth])
            if above.with_name(above.name + ".dvc").exists():
                raise DvcError(f"{rel} is inside {above.relative_to(self.root_path)}, which DVC already tracks")
        target = self.root_path / rel
        inner = next(target.rglob("*.dvc"), None) if target.is_dir() else None
        if inner is not None:
            raise DvcError(f"{rel} holds {inner.relative_to(self.root_path)}, which DVC already tracks")

    def _commit_metadata(self, message: str) -> None:
        """Commit DVC's pointer files (.dvc, dvc.lock, .gitignore) and nothing else."""
        changed = []
        for line in self.git("status", "--porcelain", "-uall").stdout.splitlines():
            path = line[3:].strip().strip('"')
            if path.endswith((".dvc", ".gitignore", "dvc.lock", "dvc.yaml", "params.yaml")):
                changed.append(path)
        if changed:
            self.git("add", "--", *changed)
            self.git("commit", "-q", "-m", message, "--", *changed)

    def run_cli(self, args: list[str]) -> int:
        """`dvc ARGS` in the data repo through DVC's own CLI, in this process, under the platform's lock
        (runs publishing meanwhile wait instead of failing on DVC's lock); returns DVC's exit code.
        Same output as `dvc` there, without a second interpreter importing DVC. It changes the working
        directory for the call, as DVC does: for a CLI process (`kiwi dvc`), not a threaded one."""
        from dvc.cli import main

        cwd = os.getcwd()
        with self.locked(), self._environ():
            try:
                os.chdir(self.root_path)
                return main(list(args))
            finally:
                os.chdir(cwd)

    def repro(self, stage: str, message: str) -> str:
        """`dvc repro STAGE` from the data repo's dvc.yaml, commit dvc.lock, push the outputs."""
        with self.locked():
            self._ensure_unlocked()
            self._install_dvc_yaml(activate=stage)  # a template stage asked for by name becomes known here
            self.dvc("repro", stage)
            self._commit_metadata(message)
            if self.push:
                self.dvc("push", "-q", stage)
            return self.git("rev-parse", "HEAD").stdout.strip()
