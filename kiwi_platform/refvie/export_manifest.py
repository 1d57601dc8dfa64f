"""`kiwi-export.json`: the list of files an export wrote, which is what makes a folder "ours".

Why a module of its own: the manifest is the one piece of evidence export trusts before touching a
folder that already exists. Reading it strictly (our kind and format, only safe relative paths)
and writing it last, from a walk that never follows symlinks, are what let a later export remove
exactly the files a previous one wrote and nothing else; the folder rules that rely on it are in
`kiwi_platform.refvie.export_target`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

MANIFEST = "kiwi-export.json"
KIND = "kiwi-export"
FORMAT = 1


def read_manifest(folder: Path) -> dict | None:
    """The kiwi-export.json in `folder` if it is one export wrote (kind, format, safe relative paths), else None."""
    path = folder / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("format") != FORMAT:
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) and _safe_relative(f) for f in files):
        return None
    return data


def write_manifest(folder: Path, header: dict) -> Path:
    """kiwi-export.json: `header` plus every file in `folder` (sorted, relative, '/'-separated)."""
    files, _, others = walk(folder)
    if others:
        raise RuntimeError(f"export wrote something that is not a file or folder: {sorted(others)[:3]}")
    data = {**header, "kind": KIND, "format": FORMAT, "files": sorted(files - {MANIFEST})}
    path = folder / MANIFEST
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def walk(root: Path) -> tuple[set[str], set[str], set[str]]:
    """(regular files, folders, anything else such as symlinks) under `root`, relative, '/'-separated.
    Symlinks are never followed; an unreadable folder raises instead of being skipped."""
    files: set[str] = set()
    dirs: set[str] = set()
    others: set[str] = set()
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for entry in entries:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    dirs.add(name)
                    stack.append(name)
                elif entry.is_file(follow_symlinks=False):
                    files.add(name)
                else:
                    others.add(name)
    return files, dirs, others


def _safe_relative(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and all(part not in ("", ".", "..") for part in name.split("/"))
