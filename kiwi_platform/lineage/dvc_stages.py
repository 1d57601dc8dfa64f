"""Follow generated data back through DVC stages to the files it was made from.

A batch made by a DVC stage (the synthetic demo set: `dvc repro synth_demo`) has raw files that
are the stage's outputs, not original data. The data repo's `dvc.lock` records, per stage, the
command, the parameters and the md5 of every dependency at the time it ran; a stage's output may
also carry `sources.json` with the sha256 of its inputs. This module turns that into lineage
entries (recursively, when a dependency is itself another stage's output), so `--verify` can
re-hash the original files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kiwi_platform.lineage.refs import FileRef

SOURCES_NAME = "sources.json"  # written by the synthetic generator beside its manifest


@dataclass
class StageInputs:
    """One DVC stage that produced data a model used: how it ran and what it read."""

    stage: str
    cmd: str
    out: str
    out_md5: str
    params: dict = field(default_factory=dict)
    inputs: list[FileRef] = field(default_factory=list)


def generating_stages(root: Path, paths: list[str]) -> list[StageInputs]:
    """The stages in `root/dvc.lock` whose outputs contain any of `paths`, then (recursively) the
    stages whose outputs contain those stages' dependencies; each stage once, in walk order."""
    stages = _locked_stages(root)
    found: list[StageInputs] = []
    seen: set[str] = set()
    pending = [Path(p) for p in paths]
    while pending:
        path = pending.pop(0)
        for name, stage in stages.items():
            if name in seen:
                continue
            for out in stage.get("outs") or []:
                out_path = _absolute(root, out["path"])
                if path == out_path or out_path in path.parents:
                    seen.add(name)
                    entry = _stage_inputs(root, name, stage, out, out_path)
                    found.append(entry)
                    pending.extend(Path(ref.path) for ref in entry.inputs)
                    break
    return found


def _locked_stages(root: Path) -> dict:
    try:
        return (yaml.safe_load((root / "dvc.lock").read_text()) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}


def _absolute(root: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (root / p)


def _stage_inputs(root: Path, name: str, stage: dict, out: dict, out_path: Path) -> StageInputs:
    sources = _sources(out_path)
    inputs = []
    for dep in stage.get("deps") or []:
        dep_path = _absolute(root, dep["path"])
        sha = next((s for rel, s in sources.items() if dep_path.as_posix().endswith("/" + rel)), "")
        md5 = str(dep.get("md5", ""))
        inputs.append(
            FileRef(str(dep_path), sha, f"input of DVC stage {name}", md5="" if md5.endswith(".dir") else md5)
        )
    params: dict = {}
    for values in (stage.get("params") or {}).values():
        params.update(_dotted(values or {}))
    return StageInputs(name, stage.get("cmd", ""), str(out_path), str(out.get("md5", "")), params, inputs)


def _dotted(values: dict, prefix: str = "") -> dict:
    """{"synth_demo": {"n": 12}} -> {"synth_demo.n": 12}, as DVC names params."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _sources(out_path: Path) -> dict[str, str]:
    """sha256 by relative path from the output's `sources.json` (empty when it has none)."""
    try:
        files = json.loads((out_path / SOURCES_NAME).read_text())["demo_dir_files"]
        return {rel: entry["sha256"] for rel, entry in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
