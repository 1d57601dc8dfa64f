"""lakeFS zero-copy import of a batch's raw originals: `s3://` originals on a real S3-protocol server
(moto on loopback) become entries of the batch branch that point at the objects, no bytes uploaded;
a re-run imports nothing; a failed import is one line and leaves the branch as it was. Local
originals stay by reference. The fake lakeFS reads the same moto server through the AWS variables."""

from __future__ import annotations

import csv
import hashlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.origins import with_source_paths
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.lib.publish import publish_asset_folder
from kiwi_platform.resources.lakefs import LakeFSError, LakeFSResource
from kiwi_platform.resources.store import MediaStore
from tests.fakes.lakefs_server import FakeLakeFSServer, point_kiwi_at, run_fake_lakefs
from tests.fakes.s3_server import S3Server, s3_server
from tests.ingestion.ingest_media import make_image, make_video

BUCKET = "media"
ROLES = ("src", "tgt", "ref")
UPLOADED = ("a.mp4", "a_tgt.mp4", "b.mp4", "b_tgt.mp4", "ref.jpg")
RUN_CONFIG = {"ops": {"raw_edit_pairs": {"config": {"min_frames": 9}}}}
# the asset-level tests need raw_edit_pairs to hand its originals to publish (the issue-17 call-site diff)
WIRED = "raw_originals" in inspect.signature(publish_asset_folder).parameters
needs_wiring = pytest.mark.skipif(not WIRED, reason="raw_edit_pairs does not pass raw_originals to publish yet")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("import-media")
    for i, name in enumerate(("a.mp4", "a_tgt.mp4", "b.mp4", "b_tgt.mp4", "local.mp4", "local_tgt.mp4")):
        make_video(root / name, 12, seed=20 + i)
    make_image(root / "ref.jpg", 64, 64, seed=5)
    return root


@pytest.fixture(scope="module")
def server(media: Path) -> Iterator[S3Server]:
    with s3_server() as srv:
        srv.bucket_with(BUCKET, {f"data/{name}": media / name for name in UPLOADED})
        yield srv


@pytest.fixture
def lake(server: S3Server, kiwi_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLakeFSServer]:
    """AWS variables at the moto server (Kiwi's reads and the fake lakeFS's imports), KIWI_LAKEFS_* at the fake
    (after `kiwi_home`, which clears KIWI_LAKEFS_ENABLED)."""
    for var, value in {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with run_fake_lakefs() as fake:
        point_kiwi_at(fake, monkeypatch)
        yield fake


def _url(name: str) -> str:
    return f"s3://{BUCKET}/data/{name}"


def _manifest(folder: Path, media: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.csv"
    rows = [
        ("make it red", _url("a.mp4"), _url("a_tgt.mp4"), _url("ref.jpg")),
        ("make it blue", _url("b.mp4"), _url("b_tgt.mp4"), ""),
        ("a local pair", str(media / "local.mp4"), str(media / "local_tgt.mp4"), ""),
    ]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("prompt", "src_video", "tgt_video", "ref_image"), *rows])
    return path


def _originals(table, batch_dir: Path) -> list[tuple[str, str]]:
    located = with_source_paths(table, batch_dir)
    return [(u, h) for r in ROLES for u, h in zip(located[f"{r}_path"], located[f"{r}_sha256"], strict=True)]


def _expected(media: Path, prefix: str) -> dict[str, str]:
    def sha(name: str) -> str:
        return hashlib.sha256((media / name).read_bytes()).hexdigest()

    return {f"{prefix}/{sha(n)}{Path(n).suffix}": _url(n) for n in UPLOADED}


def test_ingested_s3_originals_import_zero_copy(lake: FakeLakeFSServer, media: Path, tmp_path: Path) -> None:
    """From a real ingestion of s3:// media: the originals land on the batch branch as entries at the
    S3 objects (no upload, bytes served back equal the sha256 ingestion recorded), local ones stay by
    reference, a re-run imports nothing, and a later failure is one line that changes nothing."""
    store = MediaStore(root=str(tmp_path / "data"))
    out = ingest_source(open_source(_manifest(tmp_path / "csv", media)), store, "s3b", min_frames=9, copy_raw=False)
    assert out.quarantined == [] and len(out.table) == 3
    store.write_table("s3b", "raw_edit_pairs", out.table)
    table = store.read_table("s3b", "raw_edit_pairs")
    lakefs = LakeFSResource.from_env()
    done = lakefs.import_originals("s3b", _originals(table, store.batch_dir("s3b")), metadata={"run": "r1"})

    expected = _expected(media, "batches/s3b/raw")
    assert (done.paths, done.imported, done.by_reference) == (expected, 5, 2)
    state, repo = lake.state, lakefs.repository
    entries = state.entries_at(repo, "batch-s3b")
    assert {p: e.physical_address for p, e in entries.items()} == expected
    assert state.count("POST", r"/objects$") == 0  # nothing uploaded: zero-copy
    for path, obj in state.objects_at(repo, done.commit_id).items():
        assert hashlib.sha256(obj).hexdigest() == Path(path).stem  # lakeFS serves the ingested bytes
    assert state.commit_at(repo, "batch-s3b").metadata == {"kiwi_batch": "s3b", "run": "r1"}

    again = lakefs.import_originals("s3b", _originals(table, store.batch_dir("s3b")))
    assert (again.imported, again.import_id, again.commit_id) == (0, "", done.commit_id)
    assert state.count("POST", r"/import$") == 1

    state.fail_imports = "S3 access denied"
    with pytest.raises(LakeFSError, match=r"^lakeFS import of raw originals for batch other failed .*S3 access denied"):
        lakefs.import_originals("other", _originals(table, store.batch_dir("s3b")))
    assert state.entries_at(repo, "batch-other") == {}


@needs_wiring
def test_raw_edit_pairs_imports_originals_into_batch_branch(lake: FakeLakeFSServer, media: Path, platform) -> None:
    """With lakeFS on, materializing raw_edit_pairs for an S3 batch imports its originals into the batch
    branch (no upload of them), its metadata names the import, and a re-run imports nothing new."""
    from kiwi_platform.runner import materialize
    from tests.integration.conftest import add_batch

    defs, resources, instance = platform
    add_batch(platform, "s3b", _manifest(Path(resources["store"].root) / "manifests", media))
    first = materialize("key:raw_edit_pairs", ["s3b"], defs=defs, run_config=RUN_CONFIG)
    assert [o.ok for o in first] == [True], [o.errors for o in first]
    state, repo = lake.state, resources["lakefs"].repository
    expected = _expected(media, "batches/s3b/raw")
    entries = state.entries_at(repo, "batch-s3b")
    assert {p: e.physical_address for p, e in entries.items() if p.startswith("batches/s3b/raw/")} == expected
    assert "batches/s3b/raw_edit_pairs/table.parquet" in entries
    uploaded = {p for m, p in state.requests if m == "POST" and p.endswith("/objects")}
    assert len(uploaded) == 1  # one upload route; no raw original went through it:
    assert not any(e.physical_address == "" for p, e in entries.items() if p.startswith("batches/s3b/raw/"))
    meta = instance.get_latest_materialization_event(dg.AssetKey("raw_edit_pairs")).asset_materialization.metadata
    import_id = meta["lakefs_raw_import_id"].value
    assert import_id and import_id in state.imports and meta["lakefs_raw_imported"].value == 5
    assert meta["lakefs_raw_paths"].value == expected
    assert (meta["lakefs_raw_prefix"].value, meta["lakefs_raw_objects"].value) == ("batches/s3b/raw", 5)

    again = materialize("key:raw_edit_pairs", ["s3b"], defs=defs, run_config=RUN_CONFIG)
    assert [o.ok for o in again] == [True], [o.errors for o in again]
    assert state.count("POST", r"/import$") == 1
    meta = instance.get_latest_materialization_event(dg.AssetKey("raw_edit_pairs")).asset_materialization.metadata
    assert (meta["lakefs_raw_import_id"].value, meta["lakefs_raw_imported"].value) == ("", 0)


@needs_wiring
def test_failed_import_fails_raw_edit_pairs_in_one_line(lake: FakeLakeFSServer, media: Path, platform) -> None:
    """A lakeFS import error fails raw_edit_pairs with one line naming lakeFS and the batch, and nothing
    of the batch reaches the branch (no table commit, no materialization)."""
    from kiwi_platform.runner import materialize
    from tests.integration.conftest import add_batch

    defs, resources, instance = platform
    add_batch(platform, "s3b", _manifest(Path(resources["store"].root) / "manifests", media))
    lake.state.fail_imports = "S3 access denied"
    outcomes = materialize("key:raw_edit_pairs", ["s3b"], defs=defs, run_config=RUN_CONFIG)
    assert [o.success for o in outcomes] == [False]
    errors = outcomes[0].errors
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "lakeFS import of raw originals for batch s3b failed" in errors[0] and "S3 access denied" in errors[0]
    assert lake.state.entries_at(resources["lakefs"].repository, "batch-s3b") == {}
    assert instance.get_latest_materialization_event(dg.AssetKey("raw_edit_pairs")) is None
