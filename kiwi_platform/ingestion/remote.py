"""Raw media that live behind a URL (`s3://bucket/key`, or any fsspec URL): stat, hash, fetch.

Ingestion leaves raw media where they are, so probing, normalizing and `kiwi lineage --verify`
read them in place. PyAV and Pillow want a seekable local file, so a remote object is streamed
to a private temp folder (hashed on the way), used, and deleted when the `with` block ends,
whatever happens inside it: no temp file outlives the row that needed it.

S3 endpoint and credentials come from the standard AWS environment (`AWS_ENDPOINT_URL_S3` or
`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`/profile files),
the same variables the AWS CLI and boto3 read, so a MinIO, Ceph or moto endpoint needs no Kiwi
setting. Connects time out after a few seconds without retry storms, so an unreachable endpoint is
one KiwiUserError naming it, quickly; a missing object is a row problem (`missing_file`).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.quarantine import RowRejected

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
CHUNK = 1 << 20
#: Quarantine reason of an original whose bytes changed after ingestion hashed them.
CHANGED_REASON = "changed_file"
CONNECT_TIMEOUT_S = 5


def is_url(value: str | os.PathLike | None) -> bool:
    """True for `scheme://...` (two letters or more, so `C:/x` is a path); `file://` counts as local."""
    match = _URL.match(str(value or ""))
    return bool(match) and match.group(1).lower() != "file"


def join_url(base: str, relative: str) -> str:
    """`relative` under the URL prefix `base`; RowRejected(path_escape) when `..` leaves the prefix."""
    scheme, rest = base.split("://", 1)
    root = rest.rstrip("/")
    joined = posixpath.normpath(posixpath.join(root, relative))
    if joined != root and not joined.startswith(root + "/"):
        raise RowRejected("path_escape", f"{relative!r} is a path that goes outside the base prefix {base}", relative)
    return f"{scheme}://{joined}"


def endpoint(url: str) -> str:
    """The server a URL is read from, as users configure it (for error messages)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("s3", "s3a"):
        return (
            os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3 (default endpoint)"
        )
    return f"{scheme}://{url.split('://', 1)[1].split('/', 1)[0]}"


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL; S3 gets the endpoint and timeouts set here."""
    import fsspec

    scheme = url.split("://", 1)[0].lower()
    options: dict = {}
    if scheme in ("s3", "s3a"):
        options["config_kwargs"] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": 60,
            "retries": {"max_attempts": 2, "mode": "standard"},
        }
        ep = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if ep:
            options["endpoint_url"] = ep
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise KiwiUserError(f"cannot read {url}: {exc}", code="remote_unsupported") from None
    if hasattr(fs, "retries"):
        fs.retries = 2  # s3fs' own retry loop (default 5, with backoff) on top of botocore's two attempts
    fs.invalidate_cache(path)  # the instance is shared: never answer from a listing made before a change
    return fs, path


def _is_connection_error(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the server could not be reached at all."""
    seen = 0
    while exc is not None and seen < 8:
        name = type(exc).__name__
        if isinstance(exc, ConnectionError | TimeoutError) or any(
            word in name for word in ("EndpointConnection", "ConnectTimeout", "ClientConnector", "ConnectionClosed")
        ):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def unreachable(url: str, exc: BaseException) -> KiwiUserError:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return KiwiUserError(
        f"storage endpoint {endpoint(url)} cannot be reached for {url} ({detail}); check AWS_ENDPOINT_URL "
        "and the network, then re-run (nothing was registered or ingested)",
        code="remote_unreachable",
    )


def _row_error(url: str, exc: BaseException) -> Exception:
    """A per-object failure as the row's quarantine reason; an unreachable server as a user error."""
    if _is_connection_error(exc):
        return unreachable(url, exc)
    name = posixpath.basename(url.rstrip("/"))
    if isinstance(exc, FileNotFoundError):
        return RowRejected("missing_file", f"{name} does not exist ({url})", url)
    if isinstance(exc, IsADirectoryError):
        return RowRejected("not_media", f"{name} is not a regular file ({url})", url)
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return RowRejected("unreadable_file", f"{name} cannot be read ({detail})", url)


def check_reachable(urls: Iterable[str]) -> None:
    """One cheap request per bucket/host named in `urls`; raises `unreachable` for the first that fails to connect.

    Run before a batch is registered, so an endpoint that is down stops `kiwi ingest` before
    anything is written. Any other answer (no such bucket, access denied) is left to the rows.
    """
    roots = sorted({u.split("://", 1)[0] + "://" + u.split("://", 1)[1].split("/", 1)[0] for u in urls})
    for root in roots:
        fs, path = filesystem(root)
        try:
            fs.info(path)
        except Exception as exc:
            if _is_connection_error(exc):
                raise unreachable(root, exc) from None


def sha256_url(url: str) -> tuple[str, int]:
    """(sha256, size) of the object at `url`, streamed; raises RowRejected or KiwiUserError."""
    fs, path = filesystem(url)
    digest, size = hashlib.sha256(), 0
    try:
        with fs.open(path, "rb", block_size=CHUNK) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except Exception as exc:
        raise _row_error(url, exc) from None
    return digest.hexdigest(), size


@contextmanager
def fetched(url: str) -> Iterator[tuple[Path, str]]:
    """The object at `url` as a local file named like the object (suffix kept), plus its sha256.

    The file lives in a private temp folder that is removed when the block ends, on error too.
    """
    fs, path = filesystem(url)
    folder = Path(tempfile.mkdtemp(prefix="kiwi-remote-"))
    try:
        local = folder / (posixpath.basename(path.rstrip("/")) or "object")
        digest = hashlib.sha256()
        try:
            with fs.open(path, "rb", block_size=CHUNK) as src, open(local, "wb") as dst:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
        except Exception as exc:
            raise _row_error(url, exc) from None
        yield local, digest.hexdigest()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
