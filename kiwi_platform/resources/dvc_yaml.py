"""The data repo's `dvc.yaml` and `params.yaml`: which declared stages it knows, written only on change.

Why its own module: this is plain YAML bookkeeping with no DVC or git calls, kept apart from the
resource that runs DVC (`resources/dvc.py`). A stage is installed once the repo has a reason to
know it: it was reproduced here (it is in `dvc.lock`), `activate` names it, or the platform
declared it in code (`declare`, marked with `DECLARED_BY` in its `meta`, kept on later installs).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from kiwi_platform.lib.files import write_text_atomic

DECLARED_BY = "kiwi_declared_by"


def install_dvc_yaml(
    template_path: Path, root: Path, activate: str | None = None, declare: dict[str, dict] | None = None
) -> None:
    """Write `root/dvc.yaml`: the project's dvc.yaml (top-level keys, comments) with only the stages
    this repo knows; `activate` adds a template stage, `declare` adds or replaces stages defined in code."""
    target = root / "dvc.yaml"
    text = template_path.read_text() if template_path.exists() else ""
    template = yaml.safe_load(text) or {}
    installed = (yaml.safe_load(target.read_text()) or {}) if target.exists() else {}
    stages = {n: st for n, st in (installed.get("stages") or {}).items() if DECLARED_BY in (st.get("meta") or {})}
    for name, stage in (declare or {}).items():
        stages[name] = {**stage, "meta": {**(stage.get("meta") or {}), DECLARED_BY: name}}
    reproduced = locked_stages(root / "dvc.lock")
    for name, stage in (template.get("stages") or {}).items():
        if name not in stages and (name in reproduced or name == activate):
            stages[name] = stage
    document = {k: v for k, v in template.items() if k != "stages"}
    if stages:
        document = {"stages": stages, **document}
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    header += f"# Installed from {template_path} plus the stages this data repo made or declared.\n"
    rendered = header + (yaml.safe_dump(document, sort_keys=False, width=1000) if document else "")
    if not target.exists() or target.read_text() != rendered:
        write_text_atomic(target, rendered)


def locked_stages(lock: Path) -> set[str]:
    """Stage names in a `dvc.lock` (none when it is missing or unreadable)."""
    try:
        return set((yaml.safe_load(lock.read_text()) or {}).get("stages") or {})
    except (OSError, yaml.YAMLError, AttributeError):
        return set()


def set_params(path: Path, key: str, values: dict) -> None:
    """Set `key` in a params.yaml to `values`, rewriting the file only when that changes it."""
    current = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    if current.get(key) != values:
        current[key] = values
        write_text_atomic(path, yaml.safe_dump(current, sort_keys=True, width=1000))
