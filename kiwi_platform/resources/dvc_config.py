"""What the data repo's DVC configuration must say (files and environment), checked without DVC.

Why its own module: every `kiwi` command that touches the data repo checks these, so the checks
read `.dvc/config` and `.dvc/config.local` directly (configobj, DVC's own parser) and DVC is only
started when one differs (`DvcRepo._ensure_config`). DVC running in this process reads its
environment variables from `os.environ`: `environ_applied` sets them for the duration only.

- `.dvc/config` (committed): the `local` default remote and a linked cache (`CACHE_TYPE`).
- `.dvc/config.local` (machine-local, ignored by git): `core.site_cache_dir`, the folder that holds
  DVC's **state database**. DVC trusts a tracked file's recorded md5 only while the file's inode,
  mtime and size match that database's entry; a DVC that opens another database re-reads every
  tracked byte once (all shards: 4.2 GB at 10,000 tiny pairs). Unconfigured, each DVC picks
  `/var/tmp/dvc/repo/<token>`, or whatever `DVC_SITE_CACHE_DIR` says, so `kiwi dvc status` (which
  sets it) and a bare `dvc status` in the data repo (as dvc.yaml suggests) kept separate
  databases and the bare one hashed everything. Written into the repo's config, every DVC that
  opens the repo shares the one under `.dvc/tmp/site-cache`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: hardlink the workspace to the cache (same bytes, no second copy); copy only where the filesystem
#: cannot (the cache on another device). Not reflink first: DVC 3.67 then copies on ext4 instead of
#: falling through to hardlink (measured). Not symlinks: readers resolving paths would land in the
#: cache. DVC makes linked files read-only, and every writer here replaces files by rename.
CACHE_TYPE = "hardlink,copy"


def site_cache_dir(root: Path) -> Path:
    """Where DVC keeps the data repo's state database (and its index): inside the repo's `.dvc/tmp`,
    so it moves and is deleted with the repo and never lands in a shared `/var/tmp/dvc`."""
    return Path(root).resolve() / ".dvc" / "tmp" / "site-cache"


def _read(path: Path) -> dict | None:
    from configobj import ConfigObj, ConfigObjError

    try:
        return ConfigObj(str(path), list_values=False, file_error=True)
    except (OSError, ConfigObjError):
        return None


def remote_configured(root: Path, remote_url: str) -> bool:
    """Whether `.dvc/config` already names `remote_url` as the default remote and links the cache."""
    config = Path(root) / ".dvc" / "config"
    conf = _read(config)
    if conf is None:
        return False
    url = conf.get('remote "local"', {}).get("url", "")
    if url and "://" not in url:  # DVC stores a relative local path relative to .dvc/
        url = os.path.normpath(os.path.join(config.parent, url))
    wanted = remote_url if "://" in remote_url else os.path.abspath(remote_url)
    return (
        conf.get("core", {}).get("remote") == "local"
        and url == wanted
        and conf.get("cache", {}).get("type", "").strip('"') == CACHE_TYPE
    )


def state_configured(root: Path) -> bool:
    """Whether `.dvc/config.local` points DVC's state database at `site_cache_dir(root)`."""
    conf = _read(Path(root) / ".dvc" / "config.local")
    return conf is not None and conf.get("core", {}).get("site_cache_dir") == str(site_cache_dir(root))


@contextlib.contextmanager
def environ_applied(values: dict[str, str]) -> Iterator[None]:
    """`values` in `os.environ` inside the block, each changed key restored after (never the rest:
    other threads keep reading the environment meanwhile)."""
    changed = {k: os.environ.get(k) for k, v in values.items() if os.environ.get(k) != v}
    os.environ.update({k: values[k] for k in changed})
    try:
        yield
    finally:
        for key, value in changed.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
