"""Which code made an artifact: the project's git commit (and whether the tree had local changes)."""

from __future__ import annotations

import functools
import subprocess

from kiwi_platform.settings import PROJECT_ROOT


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    sha = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"git_sha": sha, "git_dirty": str(dirty).lower()}
