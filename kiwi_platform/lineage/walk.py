"""Walk a model's lineage: model version/alias -> MLflow run -> stage checkpoints -> training
manifest (DVC md5, lakeFS commit) -> quadruplet batches -> raw manifest files with sha256 ->
for generated batches, the DVC stages that made them and their input files (dvc.lock deps).

The chain is built only from what the platform recorded (MLflow tags, DVC pointer files, the
batch tables), so `verify=True` can re-hash every reachable file and name any mismatch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.origins import with_source_paths
from kiwi_platform.lib import mlflow_tags
from kiwi_platform.lib.checkpoint_manifest import MANIFEST_NAME as CHECKPOINT_MANIFEST
from kiwi_platform.lineage.dvc_stages import StageInputs, generating_stages
from kiwi_platform.lineage.refs import FileRef
from kiwi_platform.lineage.refs import verify as verify_ref
from kiwi_platform.resources.tracking import MlflowTracking


@dataclass
class BatchLineage:
    batch: str
    quadruplets_dvc_md5: str
    raw_dvc_md5: str
    manifest: str
    manifest_sha256: str
    samples_used: int
    files: list[FileRef] = field(default_factory=list)
    generated_by: list[StageInputs] = field(default_factory=list)  # DVC stages that made its raw files


@dataclass
class StageLineage:
    stage: int
    model_version: str
    run_id: str
    checkpoint_dir: str
    init_checkpoint: str
    config_hash: str
    code_git_sha: str
    dagster_run_id: str
    manifest: FileRef
    manifest_dvc_md5: str
    data_repo_rev: str
    lakefs_commit: str
    params: dict[str, str] = field(default_factory=dict)
    checkpoint_files: list[FileRef] = field(default_factory=list)


@dataclass
class Lineage:
    model: str
    registered_model: str
    version: str
    aliases: list[str]
    stages: list[StageLineage]
    batches: list[BatchLineage]
    evaluation: dict[str, float] = field(default_factory=dict)
    promotion: str = ""

    def files(self) -> list[FileRef]:
        checkpoints = [f for s in self.stages for f in s.checkpoint_files]
        derived = [f for b in self.batches for st in b.generated_by for f in st.inputs]
        return [s.manifest for s in self.stages] + checkpoints + [f for b in self.batches for f in b.files] + derived

    @property
    def mismatches(self) -> list[FileRef]:
        return [f for f in self.files() if f.status in ("mismatch", "missing")]

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_version(tracking: MlflowTracking, ref: str) -> tuple[str, str]:
    """(version, description) for `models:/name@alias`, `models:/name/N`, or an MLflow run id."""
    from mlflow.exceptions import MlflowException

    client = tracking.client()
    name = tracking.registered_model
    try:
        if ref.startswith("models:/"):
            body = ref[len("models:/") :]
            if "@" in body:
                name, alias = body.split("@", 1)
                return str(client.get_model_version_by_alias(name, alias).version), ref
            name, _, ver = body.partition("/")
            return str(client.get_model_version(name, ver).version), ref
        versions = client.search_model_versions(f"name='{name}' and run_id='{ref}'")
        if versions:
            return str(versions[0].version), f"run {ref}"
        client.get_run(ref)  # a run without a registered model
        raise KiwiUserError(f"run {ref} has no registered {name} model version")
    except MlflowException as exc:
        raise KiwiUserError(f"cannot resolve {ref!r}: {str(exc).splitlines()[0]}") from None


def build_lineage(tracking: MlflowTracking, ref: str, verify: bool = False) -> Lineage:
    client = tracking.client()
    version, _ = resolve_version(tracking, ref)
    name = tracking.registered_model
    mv = client.get_model_version(name, version)
    aliases = list(mv.aliases or [])
    stages: list[StageLineage] = []
    current: str | None = version
    top_tags = dict(mv.tags)
    while current:
        v = client.get_model_version(name, current)
        tags = dict(v.tags)
        run = client.get_run(v.run_id)
        data_repo = Path(tags.get(mlflow_tags.DATA_REPO, "."))
        stages.append(
            StageLineage(
                stage=int(tags.get(mlflow_tags.STAGE, "0") or 0),
                model_version=str(v.version),
                run_id=v.run_id,
                checkpoint_dir=tags.get(mlflow_tags.CHECKPOINT_DIR, ""),
                init_checkpoint=tags.get("kiwi.init_checkpoint", ""),
                config_hash=tags.get(mlflow_tags.CONFIG_HASH, ""),
                code_git_sha=tags.get(mlflow_tags.CODE_GIT_SHA, ""),
                dagster_run_id=tags.get(mlflow_tags.DAGSTER_RUN_ID, ""),
                manifest=FileRef(
                    str(data_repo / tags.get(mlflow_tags.MANIFEST_PATH, "")),
                    tags.get(mlflow_tags.MANIFEST_SHA256, ""),
                    "training manifest",
                ),
                manifest_dvc_md5=tags.get(mlflow_tags.MANIFEST_DVC_MD5, ""),
                data_repo_rev=tags.get(mlflow_tags.DATA_REPO_REV, ""),
                lakefs_commit=tags.get(mlflow_tags.LAKEFS_COMMIT, ""),
                params=dict(run.data.params),
                checkpoint_files=_checkpoint_files(tags),
            )
        )
        parent = tags.get(mlflow_tags.PARENT_MODEL_URI, "")
        current = parent.rsplit("/", 1)[-1] if parent.startswith("models:/") else None
    batches = _batches(stages, Path(top_tags.get(mlflow_tags.DATA_REPO, ".")))
    lineage = Lineage(
        model=f"models:/{name}/{version}",
        registered_model=name,
        version=version,
        aliases=aliases,
        stages=stages,
        batches=batches,
        promotion=top_tags.get("kiwi.promotion", ""),
        evaluation={
            k[len("eval/") :]: v for k, v in client.get_run(mv.run_id).data.metrics.items() if k.startswith("eval/")
        },
    )
    if verify:
        for ref_ in lineage.files():
            verify_ref(ref_)
    return lineage


def _batches(stages: list[StageLineage], root: Path) -> list[BatchLineage]:
    """Every batch any stage's manifest drew from, with its raw files and their sha256."""
    used: dict[str, set[str]] = {}
    for stage in stages:
        path = Path(stage.manifest.path)
        if not path.exists():
            continue
        df = pd.read_parquet(path, columns=["batch", "pair_id"])
        for batch, pair in zip(df["batch"], df["pair_id"]):
            used.setdefault(batch, set()).add(pair)
    out = []
    for batch, pairs in sorted(used.items()):
        bdir = root / "batches" / batch
        raw = pd.read_parquet(bdir / "raw_edit_pairs" / "table.parquet")
        if "src_path" not in raw:  # the table names files relative to the batch's base; origins has the base
            raw = with_source_paths(raw, bdir)
        raw = raw[raw["pair_id"].isin(pairs)]
        files: list[FileRef] = []
        seen: set[str] = set()
        for rec in raw.to_dict("records"):
            for role in ("src", "tgt", "ref"):
                if rec.get(f"{role}_path") and rec[f"{role}_path"] not in seen:
                    seen.add(rec[f"{role}_path"])
                    files.append(FileRef(rec[f"{role}_path"], rec[f"{role}_sha256"], f"raw {role}"))
                if rec.get(f"{role}_file") and rec[f"{role}_file"] not in seen:
                    seen.add(rec[f"{role}_file"])
                    files.append(
                        FileRef(str(root / rec[f"{role}_file"]), rec[f"{role}_sha256"], f"versioned {role} copy")
                    )
        manifest = bdir / "raw_edit_pairs" / "manifest.csv"
        manifest_sha = str(raw["manifest_sha256"].iloc[0]) if len(raw) else ""
        files.insert(0, FileRef(str(manifest), manifest_sha, "raw manifest"))
        out.append(
            BatchLineage(
                batch,
                _dvc_md5(bdir / "quadruplets.dvc"),
                _dvc_md5(bdir / "raw_edit_pairs.dvc"),
                str(manifest),
                manifest_sha,
                len(pairs),
                files,
                generating_stages(root, [f.path for f in files if f.role.startswith("raw ")]),
            )
        )
    return out


def _checkpoint_files(tags: dict[str, str]) -> list[FileRef]:
    """The checkpoint's manifest (hash from MLflow) and every file it lists (hashes from the manifest)."""
    folder, manifest_sha = (
        Path(tags.get(mlflow_tags.CHECKPOINT_DIR, "")),
        tags.get(mlflow_tags.CHECKPOINT_MANIFEST_SHA256, ""),
    )
    if not manifest_sha:
        return []  # registered before checkpoints carried a manifest
    manifest = folder / CHECKPOINT_MANIFEST
    refs = [FileRef(str(manifest), manifest_sha, "checkpoint manifest")]
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return refs  # verify reports the manifest itself as missing or changed
    return refs + [
        FileRef(str(folder / rel), entry["sha256"], "checkpoint file") for rel, entry in sorted(files.items())
    ]


def _dvc_md5(pointer: Path) -> str:
    try:
        return yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
    except (OSError, KeyError, TypeError, IndexError, yaml.YAMLError):
        return ""
