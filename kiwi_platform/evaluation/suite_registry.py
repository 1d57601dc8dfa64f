"""Registered suites: released benchmarks copied into the data repo, hashed, and found again by name.

`kiwi suite add NAME --format F --file FILE --root DIR` reads the released file
(`released_suites`), refuses it whole when any row is bad, copies every case's media into
`<data repo>/benchmarks/registered/NAME/` as a suite folder (`suites.save_suite`: cases.csv,
media/, suite.json with the content hash) plus `released.json` (format, source file and its
sha256, rows read, rows skipped as upstream skips them). The folder is built beside its final
place and renamed onto it, so a killed registration leaves the previous version or nothing; the
caller DVC-tracks it. `benchmark_suites` and `kiwi evaluate` find registered suites here by name.

Registering the same content under the same name again changes nothing; different content under
a taken name is refused unless `replace=True`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiwi_platform.evaluation.released_suites import read_released_suite
from kiwi_platform.evaluation.suites import Suite, SuiteError, load_suite, save_suite
from kiwi_platform.lib.files import sha256_file, write_text_atomic

REGISTERED_DIR = "benchmarks/registered"
INFO_NAME = "released.json"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class RegisteredSuite:
    name: str
    folder: Path
    suite: Suite
    info: dict[str, Any]
    changed: bool  # False when the same content was registered already


def registry_root(data_root: str | Path) -> Path:
    return Path(data_root) / REGISTERED_DIR


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise SuiteError(f"suite name {name!r} must be lower-case letters, digits, '-' or '_' (at most 64)")
    return name


def registered_names(data_root: str | Path) -> list[str]:
    root = registry_root(data_root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / INFO_NAME).is_file())


def load_registered(data_root: str | Path, name: str) -> tuple[Suite, dict[str, Any]]:
    """The registered suite `name` and its `released.json`; one-line error naming the known suites if absent."""
    folder = registry_root(data_root) / check_name(name)
    if not (folder / INFO_NAME).is_file():
        known = ", ".join(registered_names(data_root)) or "none yet"
        raise SuiteError(f"no registered suite {name!r} (registered: {known}); add one with `kiwi suite add`")
    info = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
    return load_suite(folder), info


def register_suite(
    data_root: str | Path, name: str, fmt: str, file: str | Path, root: str | Path, *, replace: bool = False
) -> RegisteredSuite:
    """Read, validate (every bad row listed) and copy a released benchmark in as suite `name`."""
    check_name(name)
    released = read_released_suite(fmt, file, root, name)
    folder = registry_root(data_root) / name
    new_hash = released.suite.content_hash
    if (folder / INFO_NAME).is_file():
        old = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
        if old.get("content_hash") == new_hash and old.get("format") == fmt:
            suite = load_suite(folder)
            return RegisteredSuite(name, folder, suite, old, changed=False)
        if not replace:
            raise SuiteError(
                f"suite {name!r} is registered with other content (hash {str(old.get('content_hash'))[:12]}, "
                f"now {new_hash[:12]}); pass --replace to switch it, or choose another name"
            )
    info = {
        "name": name,
        "format": fmt,
        "source_file": str(released.source),
        "source_sha256": sha256_file(released.source),
        "root": str(Path(root).resolve()),
        "rows": released.rows,
        "cases": len(released.suite.cases),
        "skipped": released.skipped,
        "skipped_total": sum(released.skipped.values()),
        "content_hash": new_hash,
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{name}.build-", dir=folder.parent))
    try:
        save_suite(released.suite, build / name, name=name)
        write_text_atomic(build / name / INFO_NAME, json.dumps(info, indent=2, sort_keys=True) + "\n")
        if folder.exists():
            old_dir = build / "replaced"
            folder.rename(old_dir)
        (build / name).rename(folder)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return RegisteredSuite(name, folder, load_suite(folder), info, changed=True)
