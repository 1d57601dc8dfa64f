"""Raw media on S3, read in place through s3fs against a real S3-protocol server on loopback (moto):
ingest and normalize `s3://` media, quarantine a missing object, report a changed one with
`kiwi lineage --verify`, and stop with one line (registering nothing) when the endpoint is down."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.clip_table import normalize_batch
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.origins import with_source_paths
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.resources.store import MediaStore
from tests.fakes.s3_server import S3Server, free_port, s3_server
from tests.ingestion.ingest_media import Kit

BUCKET = "media"
SETTINGS = {"num_frames": 16, "max_area": 64 * 64, "multiple": 32}
KIWI = [sys.executable, "-m", "kiwi_platform"]
UPLOADED = ("a.mp4", "a_tgt.mp4", "img_src.jpg", "img_tgt.jpg", "ref.jpg")


@pytest.fixture(scope="module")
def server(kit: Kit) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with a bucket holding a few kit files under data/."""
    with s3_server() as srv:
        srv.bucket_with(BUCKET, {f"data/{name}": kit.root / name for name in UPLOADED})
        yield srv


@pytest.fixture
def s3_env(server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The standard AWS variables pointing at the loopback server; temp files go to a folder we can watch."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return server


def _manifest(folder: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("prompt", "src_video", "tgt_video", "ref_image"), *rows])
    return path


def _url(name: str) -> str:
    return f"s3://{BUCKET}/data/{name}"


def test_s3_media_ingest_and_normalize_in_place(s3_env: S3Server, tmp_path: Path, kit: Kit) -> None:
    """A manifest naming s3:// objects ingests them by reference (URI, size and sha256 of the object's
    bytes; videos not copied, the small reference image stored), quarantines a missing object as
    missing_file, normalizes the accepted videos from S3, and leaves no temp file behind."""
    manifest = _manifest(
        tmp_path / "csv",
        [
            ("make it red", _url("a.mp4"), _url("a_tgt.mp4"), _url("ref.jpg")),
            ("gone", _url("a.mp4"), _url("nowhere.mp4"), ""),
        ],
    )
    store = MediaStore(root=str(tmp_path / "data"))
    out = ingest_source(open_source(manifest), store, "b", min_frames=16, copy_raw=False)
    assert [(q.row, q.reason, q.path) for q in out.quarantined] == [(2, "missing_file", _url("nowhere.mp4"))]
    store.write_table("b", "raw_edit_pairs", out.table)
    row = with_source_paths(store.read_table("b", "raw_edit_pairs"), store.batch_dir("b")).iloc[0]
    assert (row["src_rel"], row["src_path"], row["src_file"]) == (_url("a.mp4"), _url("a.mp4"), "")
    assert row["src_sha256"] == sha256_file(kit.root / "a.mp4")
    assert row["tgt_size_bytes"] == (kit.root / "a_tgt.mp4").stat().st_size
    assert row["ref_path"] == _url("ref.jpg") and row["ref_size_bytes"] == (kit.root / "ref.jpg").stat().st_size
    media = store.asset_dir("b", "raw_edit_pairs") / "media"
    assert [p.name for p in media.iterdir()] == [f"{row['ref_sha256']}.jpg"]

    clips = normalize_batch(store.read_table("b", "raw_edit_pairs"), store, "b", tmp_path / "clips", SETTINGS)
    assert clips.rejected == [] and len(clips.table) == 1
    assert list(Path(tempfile.gettempdir()).iterdir()) == []


def test_s3_base_prefix_and_escape(s3_env: S3Server, tmp_path: Path) -> None:
    """With an s3:// base prefix relative paths are read under it (tables keep the relative name), and
    `../` out of the prefix is path_escape, as for a local base folder."""
    manifest = _manifest(tmp_path / "csv", [("p", "img_src.jpg", "img_tgt.jpg", ""), ("q", "../x.jpg", "y.jpg", "")])
    source = open_source(manifest, f"s3://{BUCKET}/data/")
    store = MediaStore(root=str(tmp_path / "data"))
    out = ingest_source(source, store, "b", min_frames=16, copy_raw=False)
    assert [(q.row, q.reason) for q in out.quarantined] == [(2, "path_escape")]
    row = with_source_paths(out.table.head(1), store.batch_dir("b")).iloc[0]
    assert (row["src_rel"], row["src_path"], row["media"]) == ("img_src.jpg", _url("img_src.jpg"), "image")


def test_lineage_verify_reports_a_changed_s3_object(
    s3_env: S3Server, tmp_path: Path, kit: Kit, kiwi_home: Path
) -> None:
    """After ingestion, overwriting an object on S3 makes `kiwi lineage --verify` print one CHANGED line
    naming it and a summary, and exit 1; deleting one prints MISSING."""
    from kiwi_platform.resources import build_resources

    client = s3_env.client()
    for name in ("img_src.jpg", "img_tgt.jpg"):
        client.upload_file(str(kit.root / name), BUCKET, f"mut/{name}")
    manifest = _manifest(
        tmp_path / "csv",
        [("p", f"s3://{BUCKET}/mut/img_src.jpg", f"s3://{BUCKET}/mut/img_tgt.jpg", "")],
    )
    store = build_resources()["store"]
    store.register_batch("s3b", str(manifest))
    out = ingest_source(open_source(manifest), store, "s3b", min_frames=16, copy_raw=False)
    store.write_table("s3b", "raw_edit_pairs", out.table)
    env = {**os.environ, "COLUMNS": "200"}
    clean = subprocess.run([*KIWI, "lineage", "--verify"], env=env, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert clean.stdout.strip() == "verified 2 raw files in 1 batches: 0 changed, 0 missing, 0 unreadable"

    client.upload_file(str(kit.root / "ref.jpg"), BUCKET, "mut/img_src.jpg")
    client.delete_object(Bucket=BUCKET, Key="mut/img_tgt.jpg")
    proc = subprocess.run([*KIWI, "lineage", "--verify"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == (
        f"CHANGED: batch s3b src s3://{BUCKET}/mut/img_src.jpg "
        f"(sha256 {sha256_file(kit.root / 'ref.jpg')}, ingested {sha256_file(kit.root / 'img_src.jpg')})"
    )
    assert lines[1].startswith(f"MISSING: batch s3b tgt s3://{BUCKET}/mut/img_tgt.jpg")
    assert lines[2] == "verified 2 raw files in 1 batches: 1 changed, 1 missing, 0 unreadable"


def test_unreachable_endpoint_is_one_line_and_registers_nothing(
    s3_env: S3Server, tmp_path: Path, kiwi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AWS_ENDPOINT_URL pointing at a port nobody listens on, opening the manifest fails with one
    line naming the endpoint, and `kiwi ingest` exits 2 with that line, leaving no registered batch
    and no Dagster partition."""
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    manifest = _manifest(tmp_path / "csv", [("p", _url("a.mp4"), _url("a_tgt.mp4"), "")])
    with pytest.raises(KiwiUserError, match=f"storage endpoint {dead} cannot be reached") as err:
        open_source(manifest)
    assert "\n" not in str(err.value)

    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [*KIWI, "ingest", str(manifest), "--batch", "dead"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: storage endpoint {dead} cannot be reached")
    assert not (kiwi_home / "data" / "registry" / "dead.json").exists()
    assert not (kiwi_home / "data" / "batches" / "dead").exists()
    if (kiwi_home / "dagster").is_dir():  # the Dagster instance may not even exist yet
        import dagster as dg

        from kiwi_platform.partitions import batches

        with dg.DagsterInstance.get() as instance:
            assert "dead" not in instance.get_dynamic_partitions(batches.name)
