"""Names of the MLflow tags that link a model back to its data and code (see `kiwi lineage`).

Every stage run and registered model version carries these; values are strings.
"""

STAGE = "kiwi.stage"
DAGSTER_RUN_ID = "kiwi.dagster_run_id"
ASSET_KEY = "kiwi.asset_key"
PARTITION = "kiwi.partition"
CODE_GIT_SHA = "kiwi.code_git_sha"
CODE_DIRTY = "kiwi.code_git_dirty"
CONFIG_HASH = "kiwi.config_hash"
MANIFEST_PATH = "kiwi.manifest_path"  # relative to the data repo
MANIFEST_SHA256 = "kiwi.manifest_sha256"
MANIFEST_DVC_MD5 = "kiwi.manifest_dvc_md5"
DATA_REPO = "kiwi.data_repo"
DATA_REPO_REV = "kiwi.data_repo_rev"
LAKEFS_COMMIT = "kiwi.lakefs_commit"
PARENT_MODEL_URI = "kiwi.parent_model_uri"
PARENT_RUN_ID = "kiwi.parent_run_id"
CHECKPOINT_DIR = "kiwi.checkpoint_dir"
CHECKPOINT_MANIFEST_SHA256 = "kiwi.checkpoint_manifest_sha256"  # sha256 of kiwi-checkpoint.json in CHECKPOINT_DIR
RUN_ID = "kiwi.mlflow_run_id"
