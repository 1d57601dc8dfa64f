"""Optional lakeFS resource: a branch per batch, commits tagged with the Dagster run id, merge once checks pass.

Off by default, so the platform runs with no lakeFS server; when `enabled` is False every method is a
no-op returning None (or "" for `commit_url`), so assets call it unconditionally instead of branching.

It wraps the high-level `lakefs` SDK (the `lakefs` extra; not the deprecated `lakefs-client`), imported
lazily so the platform imports without it. Every server or network failure becomes one `LakeFSError`
line naming the operation and the HTTP status, never an SDK traceback.

Raw originals on an object store are imported zero-copy (`import_originals`): lakeFS records entries
pointing at the objects, no bytes move. Local paths cannot be imported and stay by reference.

Environment (read by `LakeFSResource.from_env()`; unset variables keep the field defaults):
  KIWI_LAKEFS_ENABLED            1/true/yes/on to turn lakeFS on
  KIWI_LAKEFS_ENDPOINT           server URL, e.g. http://localhost:8000 (the /api/v1 suffix is optional)
  KIWI_LAKEFS_ACCESS_KEY_ID      access key id
  KIWI_LAKEFS_SECRET_ACCESS_KEY  secret access key
  KIWI_LAKEFS_REPOSITORY         repository name (default kiwi-data)
  KIWI_LAKEFS_MAIN_BRANCH        default branch batches merge into (default main)
  KIWI_LAKEFS_STORAGE_NAMESPACE  storage namespace for a repository created here (default local://kiwi-data)
  KIWI_LAKEFS_IMPORT_TIMEOUT_S   seconds to wait for an import of raw originals (default 600)
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

from kiwi_platform.lib.files import md5_file
from kiwi_platform.resources.lakefs_errors import LakeFSError, http_summary
from kiwi_platform.resources.lakefs_import import RawImport, plan_import, wait_for_import

if TYPE_CHECKING:
    import lakefs

_TRUE = {"1", "true", "yes", "on"}
_ENV_FIELDS = {
    "endpoint": "KIWI_LAKEFS_ENDPOINT",
    "access_key_id": "KIWI_LAKEFS_ACCESS_KEY_ID",
    "secret_access_key": "KIWI_LAKEFS_SECRET_ACCESS_KEY",
    "repository": "KIWI_LAKEFS_REPOSITORY",
    "main_branch": "KIWI_LAKEFS_MAIN_BRANCH",
    "storage_namespace": "KIWI_LAKEFS_STORAGE_NAMESPACE",
    "import_timeout_s": "KIWI_LAKEFS_IMPORT_TIMEOUT_S",
}
_CHUNK = 1 << 20


def batch_branch_name(batch: str) -> str:
    """lakeFS branch for a batch: `batch-<name>` with characters lakeFS rejects replaced by `-`.

    When sanitizing changed the name, a short hash of the original is appended so that two batches
    that differ only in such characters ("a.b", "a b") never share a branch.
    """
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", batch).strip("-") or "unnamed"
    if clean != batch or len(clean) > 80:
        clean = f"{clean[:80]}-{hashlib.sha256(batch.encode()).hexdigest()[:8]}"
    return f"batch-{clean}"


class LakeFSResource(dg.ConfigurableResource):
    """Versions batch outputs in lakeFS: `branch_for_batch` -> `upload_directory` -> `commit` -> `merge`.

    Configure it from env with `LakeFSResource.from_env()` (see the module docstring for variables) or
    pass fields directly (tests point it at a local fake server). Uploads go through lakeFS itself
    (no presigned URLs), so they work for any blockstore the server uses.
    """

    enabled: bool = False
    endpoint: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    repository: str = "kiwi-data"
    main_branch: str = "main"
    storage_namespace: str = "local://kiwi-data"
    import_timeout_s: float = 600.0

    _client: Any = PrivateAttr(default=None)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LakeFSResource:
        """Build from KIWI_LAKEFS_* variables; unset ones keep the defaults (so lakeFS stays off)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {name: env[var] for name, var in _ENV_FIELDS.items() if env.get(var)}
        values["enabled"] = env.get("KIWI_LAKEFS_ENABLED", "").strip().lower() in _TRUE
        return cls(**values)

    # -- internals --------------------------------------------------------------------------------
    @property
    def _api_host(self) -> str:
        host = self.endpoint.rstrip("/")
        return host if host.endswith("/api/v1") else f"{host}/api/v1"

    def _sdk(self) -> lakefs.Client:
        if self._client is None:
            if not self.endpoint:
                raise LakeFSError("lakeFS is enabled but no endpoint is set (KIWI_LAKEFS_ENDPOINT)")
            try:
                import lakefs
            except ImportError:
                raise LakeFSError(
                    "lakeFS is enabled but the `lakefs` package is missing: pip install 'kiwi-platform[lakefs]'"
                ) from None
            self._client = lakefs.Client(
                host=self._api_host, username=self.access_key_id, password=self.secret_access_key
            )
        return self._client

    def _repo(self) -> lakefs.Repository:
        import lakefs

        return lakefs.Repository(self.repository, client=self._sdk())

    @contextlib.contextmanager
    def _translate(self, operation: str) -> Iterator[None]:
        """Turn SDK, HTTP and network failures into one-line `LakeFSError`s naming `operation`."""
        import lakefs_sdk
        import urllib3
        from lakefs.exceptions import LakeFSException, ServerException

        where = f"lakeFS {operation} failed ({self.endpoint}, repository {self.repository})"
        try:
            yield
        except LakeFSError:
            raise
        except ServerException as err:
            raise LakeFSError(f"{where}: {http_summary(err.status_code, err.reason, err.body)}") from None
        except lakefs_sdk.ApiException as err:
            raise LakeFSError(f"{where}: {http_summary(err.status, err.reason, err.body)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            cause = str(getattr(err, "reason", None) or err).rsplit(": ", 1)[-1]
            raise LakeFSError(f"{where}: cannot reach the server: {cause} (check KIWI_LAKEFS_ENDPOINT)") from None
        except LakeFSException as err:
            raise LakeFSError(f"{where}: {err}") from None
        except ValueError as err:  # the SDK validates names and bodies client-side (pydantic)
            raise LakeFSError(f"{where}: invalid value: {str(err).splitlines()[-1]}") from None

    # -- public API -------------------------------------------------------------------------------
    def ensure_repository(self) -> None:
        """Create the repository (with `main_branch`) unless it already exists."""
        if not self.enabled:
            return None
        with self._translate("ensure_repository"):
            self._repo().create(
                storage_namespace=self.storage_namespace, default_branch=self.main_branch, exist_ok=True
            )
        return None

    def branch_for_batch(self, batch: str) -> str | None:
        """Return the batch's branch (see `batch_branch_name`), creating it from `main_branch` if missing."""
        if not self.enabled:
            return None
        self.ensure_repository()
        name = batch_branch_name(batch)
        with self._translate(f"branch_for_batch({batch})"):
            self._repo().branch(name).create(self.main_branch, exist_ok=True)
        return name

    def upload_directory(self, branch: str, local_dir: Path, prefix: str) -> int | None:
        """Upload every file under `local_dir` to `prefix/<relative path>` on `branch`; return how many were sent.

        Files whose size and md5 already match the object on the branch are skipped (one listing call
        gives the remote checksums), so re-running a batch uploads only what changed. Objects that no
        longer exist locally are left in place.
        """
        if not self.enabled:
            return None
        from lakefs.models import ObjectInfo

        root = Path(local_dir)
        if not root.is_dir():
            raise LakeFSError(f"lakeFS upload_directory failed: {root} is not a directory")
        base = prefix.strip("/")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        uploaded = 0
        with self._translate(f"upload_directory({branch})"):
            lake_branch = self._repo().branch(branch)
            listing = lake_branch.objects(prefix=f"{base}/" if base else None)
            remote = {o.path: (o.size_bytes, o.checksum) for o in listing if isinstance(o, ObjectInfo)}
            for path in files:
                key = "/".join(filter(None, [base, path.relative_to(root).as_posix()]))
                size = path.stat().st_size
                known = remote.get(key)
                if known is not None and known[0] == size and known[1] == md5_file(path):
                    continue
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                writer = lake_branch.object(key).writer("wb", pre_sign=False, content_type=content_type)
                with path.open("rb") as source, writer:
                    shutil.copyfileobj(source, writer, _CHUNK)
                uploaded += 1
        return uploaded

    def commit(self, branch: str, message: str, metadata: dict[str, str]) -> str | None:
        """Commit staged changes on `branch` with `metadata` (e.g. dagster_run_id); return the commit id.

        With nothing to commit the branch's current head id is returned, so re-runs are not errors.
        """
        if not self.enabled:
            return None
        from lakefs.exceptions import BadRequestException

        with self._translate(f"commit({branch})"):
            lake_branch = self._repo().branch(branch)
            if next(iter(lake_branch.uncommitted(max_amount=1)), None) is None:
                return lake_branch.head.id
            try:
                return lake_branch.commit(message=message, metadata={k: str(v) for k, v in metadata.items()}).id
            except BadRequestException as err:
                if "no changes" not in str(err.body.get("message", "")):
                    raise
                return lake_branch.head.id

    def merge(self, branch: str, into: str | None = None) -> str | None:
        """Merge `branch` into `into` (default `main_branch`); return the destination's resulting commit id.

        Call it only after the batch's blocking checks passed. Only committed data is merged; when there
        is nothing new to merge the destination's head id is returned.
        """
        if not self.enabled:
            return None
        from lakefs.exceptions import BadRequestException, ServerException

        target = into or self.main_branch
        with self._translate(f"merge({branch} -> {target})"):
            repo = self._repo()
            try:
                return repo.branch(branch).merge_into(target, message=f"Merge {branch} into {target}")
            except (BadRequestException, ServerException) as err:
                reason = str(err.body.get("message", ""))
                if "no changes" not in reason and "no difference" not in reason:
                    raise
                return repo.branch(target).head.id

    def import_originals(
        self,
        batch: str,
        originals: Iterable[tuple[str, str]],
        *,
        prefix: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> RawImport | None:
        """Import a batch's raw originals zero-copy into its branch, once: return what the branch holds.

        `originals` are (URI, sha256) pairs as ingestion recorded them. Those on an object store this
        lakeFS can import from (its `import_validity_regex`, e.g. `^s3://`) land at
        `raw_destination(prefix, sha256, uri)` (default prefix `batches/<batch>/raw`) in one import
        and one commit carrying `metadata`; the rest stay by reference. Destinations already on the
        branch are skipped, so a re-run imports nothing. The import is all or nothing: a failure is
        one `LakeFSError` naming lakeFS and the batch, and the branch is left as it was.
        """
        if not self.enabled:
            return None
        from lakefs.models import ObjectInfo

        branch = self.branch_for_batch(batch)
        base = (prefix or f"batches/{batch}/raw").strip("/")
        where = f"lakeFS import of raw originals for batch {batch} failed"
        with self._translate(f"import_originals({batch})"):
            storage = self._sdk().storage_config
            pattern = re.compile(storage.import_validity_regex) if storage.import_support else None
            wanted, by_reference = plan_import(originals, pattern, base)
            lake_branch = self._repo().branch(branch)
            present = {o.path for o in lake_branch.objects(prefix=f"{base}/") if isinstance(o, ObjectInfo)}
            todo = {dest: uri for dest, uri in sorted(wanted.items()) if dest not in present}
            if not todo:
                head = lake_branch.head.id
                return RawImport(branch, base, wanted, 0, "", head, len(by_reference))
            manager = lake_branch.import_data(
                commit_message=f"raw originals of batch {batch}",
                metadata={"kiwi_batch": batch, **{k: str(v) for k, v in (metadata or {}).items()}},
            )
            for dest, uri in todo.items():
                manager.object(object_store_uri=uri, destination=dest)
            import_id = manager.start()
            status = wait_for_import(manager, where, import_id, self.import_timeout_s)
        commit_id = status.commit.id if status.commit else ""
        return RawImport(branch, base, wanted, len(todo), import_id, commit_id, len(by_reference))

    def commit_url(self, commit_id: str | None) -> str:
        """Link to the commit in the lakeFS web UI, for asset metadata ("" when disabled or no commit)."""
        if not self.enabled or not commit_id:
            return ""
        ui_base = self._api_host[: -len("/api/v1")]
        return f"{ui_base}/repositories/{self.repository}/commits/{commit_id}"
