"""The optional lakeFS resource, driven through the real `lakefs` SDK against a local fake lakeFS server."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.resources.lakefs import LakeFSError, LakeFSResource, batch_branch_name
from tests.fakes.lakefs_server import FakeLakeFSServer, run_fake_lakefs

REPO = "kiwi-data"


@pytest.fixture
def lakefs_fake() -> Iterator[FakeLakeFSServer]:
    with run_fake_lakefs() as server:
        yield server


@pytest.fixture
def lakefs(lakefs_fake: FakeLakeFSServer) -> LakeFSResource:
    return LakeFSResource(
        enabled=True,
        endpoint=lakefs_fake.endpoint,
        access_key_id=lakefs_fake.access_key_id,
        secret_access_key=lakefs_fake.secret_access_key,
        repository=REPO,
    )


@pytest.fixture
def batch_dir(tmp_path: Path) -> Path:
    out = tmp_path / "normalized"
    (out / "clips").mkdir(parents=True)
    (out / "clips" / "pair-0001.npz").write_bytes(b"\x00\x01clip-bytes" * 100)
    (out / "table.parquet").write_bytes(b"PAR1 accepted rows")
    return out


def test_disabled_resource_is_a_noop(lakefs_fake: FakeLakeFSServer, batch_dir: Path) -> None:
    """With lakeFS off (the default) every call returns None and nothing is sent, so assets need no branches."""
    off = LakeFSResource(endpoint=lakefs_fake.endpoint, access_key_id="k", secret_access_key="s")
    assert off.enabled is False
    assert off.ensure_repository() is None
    assert off.branch_for_batch("demo") is None
    assert off.upload_directory("batch-demo", batch_dir, "normalized") is None
    assert off.commit("batch-demo", "msg", {"dagster_run_id": "r1"}) is None
    assert off.merge("batch-demo") is None
    assert off.commit_url("abc") == ""
    assert lakefs_fake.state.requests == []


def test_from_env_reads_kiwi_variables() -> None:
    """KIWI_LAKEFS_* variables configure the resource; without KIWI_LAKEFS_ENABLED it stays off."""
    env = {
        "KIWI_LAKEFS_ENABLED": "true",
        "KIWI_LAKEFS_ENDPOINT": "http://lakefs.example:8000",
        "KIWI_LAKEFS_ACCESS_KEY_ID": "AKIA1",
        "KIWI_LAKEFS_SECRET_ACCESS_KEY": "s3cret",
        "KIWI_LAKEFS_REPOSITORY": "other-repo",
    }
    res = LakeFSResource.from_env(env)
    assert (res.enabled, res.endpoint, res.access_key_id, res.repository) == (
        True,
        "http://lakefs.example:8000",
        "AKIA1",
        "other-repo",
    )
    assert res.commit_url("c0ffee") == "http://lakefs.example:8000/repositories/other-repo/commits/c0ffee"
    off = LakeFSResource.from_env({"KIWI_LAKEFS_ENDPOINT": "http://x"})
    assert off.enabled is False and off.repository == "kiwi-data"


def test_branch_per_batch_is_created_from_main(lakefs: LakeFSResource, lakefs_fake: FakeLakeFSServer) -> None:
    """Each batch gets its own branch forked from main (repository created on first use); asking twice is safe."""
    branch = lakefs.branch_for_batch("demo_2024")
    assert branch == "batch-demo_2024"
    assert lakefs.branch_for_batch("demo_2024") == branch
    state = lakefs_fake.state
    assert set(state.repos[REPO].branches) == {"main", "batch-demo_2024"}
    assert state.commit_at(REPO, branch).id == state.commit_at(REPO, "main").id
    other = lakefs.branch_for_batch("demo 2024/v2")
    assert other.startswith("batch-demo-2024-v2-") and other != batch_branch_name("demo-2024-v2")


def test_upload_and_commit_store_objects_with_run_id(
    lakefs: LakeFSResource, lakefs_fake: FakeLakeFSServer, batch_dir: Path
) -> None:
    """Uploading a batch folder and committing records the files under the prefix and the Dagster run id."""
    branch = lakefs.branch_for_batch("demo")
    assert lakefs.upload_directory(branch, batch_dir, "batches/demo/normalized") == 2
    commit_id = lakefs.commit(branch, "normalized_clips for demo", {"dagster_run_id": "run-123"})

    commit = lakefs_fake.state.commit_at(REPO, branch)
    assert commit_id == commit.id and len(commit_id) == 64
    assert commit.metadata == {"dagster_run_id": "run-123"}
    assert commit.message == "normalized_clips for demo"
    stored = lakefs_fake.state.objects_at(REPO, commit_id)
    assert stored == {
        "batches/demo/normalized/clips/pair-0001.npz": (batch_dir / "clips" / "pair-0001.npz").read_bytes(),
        "batches/demo/normalized/table.parquet": b"PAR1 accepted rows",
    }
    assert lakefs.commit_url(commit_id) == f"{lakefs_fake.endpoint}/repositories/{REPO}/commits/{commit_id}"


def test_rerun_skips_unchanged_files_and_commit_is_stable(
    lakefs: LakeFSResource, lakefs_fake: FakeLakeFSServer, batch_dir: Path
) -> None:
    """Re-running a batch uploads nothing unchanged and a commit with no changes returns the same id."""
    branch = lakefs.branch_for_batch("demo")
    lakefs.upload_directory(branch, batch_dir, "out")
    first = lakefs.commit(branch, "first", {"dagster_run_id": "run-1"})
    uploads_before = lakefs_fake.state.count("POST", r"/objects$")

    assert lakefs.upload_directory(branch, batch_dir, "out") == 0
    assert lakefs_fake.state.count("POST", r"/objects$") == uploads_before
    assert lakefs.commit(branch, "second", {"dagster_run_id": "run-2"}) == first
    assert lakefs.commit(branch, "third", {"dagster_run_id": "run-3"}) == first

    (batch_dir / "table.parquet").write_bytes(b"PAR1 changed rows")
    assert lakefs.upload_directory(branch, batch_dir, "out") == 1
    changed = lakefs.commit(branch, "fourth", {"dagster_run_id": "run-4"})
    assert changed != first
    assert lakefs_fake.state.commit_at(REPO, changed).parents == [first]


def test_merge_brings_batch_objects_into_main(
    lakefs: LakeFSResource, lakefs_fake: FakeLakeFSServer, batch_dir: Path
) -> None:
    """After checks pass, merging the batch branch makes its committed objects visible on main."""
    branch = lakefs.branch_for_batch("demo")
    lakefs.upload_directory(branch, batch_dir, "batches/demo")
    commit_id = lakefs.commit(branch, "demo", {"dagster_run_id": "run-9"})
    assert lakefs_fake.state.objects_at(REPO, "main") == {}

    merged = lakefs.merge(branch)
    main_head = lakefs_fake.state.commit_at(REPO, "main")
    assert merged == main_head.id
    assert commit_id in main_head.parents
    assert set(lakefs_fake.state.objects_at(REPO, "main")) == {
        "batches/demo/clips/pair-0001.npz",
        "batches/demo/table.parquet",
    }
    assert lakefs.merge(branch) == merged  # nothing new: same head, no error


def test_merge_conflict_is_a_clear_error(lakefs: LakeFSResource, tmp_path: Path) -> None:
    """Two batches writing different bytes to the same path fail the second merge with a one-line 409 error."""
    for name, payload in (("a", b"first"), ("b", b"second")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "shared.txt").write_bytes(payload)
        branch = lakefs.branch_for_batch(name)
        lakefs.upload_directory(branch, folder, "shared")
        lakefs.commit(branch, name, {"dagster_run_id": name})
    lakefs.merge("batch-a")
    with pytest.raises(LakeFSError, match=r"merge\(batch-b -> main\).*HTTP 409") as info:
        lakefs.merge("batch-b")
    assert "\n" not in str(info.value)


def test_bad_credentials_give_clear_401_error(lakefs_fake: FakeLakeFSServer) -> None:
    """Wrong keys raise one LakeFSError line naming the operation and HTTP 401, not an SDK traceback."""
    bad = LakeFSResource(enabled=True, endpoint=lakefs_fake.endpoint, access_key_id="nope", secret_access_key="x")
    with pytest.raises(LakeFSError) as info:
        bad.branch_for_batch("demo")
    message = str(info.value)
    assert "401" in message and "ensure_repository" in message
    assert "KIWI_LAKEFS_ACCESS_KEY_ID" in message
    assert "\n" not in message and "Traceback" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_server_down_gives_clear_error(batch_dir: Path) -> None:
    """When nothing listens at the endpoint, calls fail fast with a LakeFSError that says the server is unreachable."""
    with run_fake_lakefs() as server:
        endpoint = server.endpoint
        res = LakeFSResource(
            enabled=True,
            endpoint=endpoint,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
        )
        branch = res.branch_for_batch("demo")
    with pytest.raises(LakeFSError, match="cannot reach the server") as info:
        res.upload_directory(branch, batch_dir, "x")
    assert endpoint in str(info.value) and "upload_directory" in str(info.value)


def test_enabled_without_endpoint_is_a_clear_error() -> None:
    """Turning lakeFS on without an endpoint tells the user which variable to set."""
    with pytest.raises(LakeFSError, match="KIWI_LAKEFS_ENDPOINT"):
        LakeFSResource(enabled=True).ensure_repository()


def test_resource_works_inside_a_dagster_run(
    lakefs: LakeFSResource, lakefs_fake: FakeLakeFSServer, batch_dir: Path
) -> None:
    """As a Dagster resource, an asset can branch, upload, commit with its run id and merge in one run."""

    @dg.asset
    def versioned_batch(context: dg.AssetExecutionContext, lakefs: LakeFSResource) -> dg.MaterializeResult:
        branch = lakefs.branch_for_batch("demo")
        lakefs.upload_directory(branch, batch_dir, "batches/demo")
        commit_id = lakefs.commit(branch, "demo", {"dagster_run_id": context.run.run_id})
        merged = lakefs.merge(branch)
        return dg.MaterializeResult(
            metadata={
                "lakefs_commit": dg.MetadataValue.url(lakefs.commit_url(merged)),
                "lakefs_batch_commit": commit_id,
            }
        )

    result = dg.materialize([versioned_batch], resources={"lakefs": lakefs})
    assert result.success
    branch_commit = lakefs_fake.state.commit_at(REPO, "batch-demo")
    assert branch_commit.metadata == {"dagster_run_id": result.run_id}
    assert "batches/demo/table.parquet" in lakefs_fake.state.objects_at(REPO, "main")


def test_committed_batch_reads_back_with_the_lakefs_sdk(
    lakefs: LakeFSResource, lakefs_fake: FakeLakeFSServer, batch_dir: Path
) -> None:
    """What a batch committed is readable with plain lakeFS tooling: bytes at the commit id, and the run in the log."""
    import lakefs as lakefs_sdk

    branch = lakefs.branch_for_batch("demo")
    lakefs.upload_directory(branch, batch_dir, "b")
    commit_id = lakefs.commit(branch, "demo", {"dagster_run_id": "run-42"})
    client = lakefs_sdk.Client(
        host=lakefs_fake.endpoint, username=lakefs_fake.access_key_id, password=lakefs_fake.secret_access_key
    )
    repo = lakefs_sdk.Repository(REPO, client=client)
    obj = repo.ref(commit_id).object("b/table.parquet")
    assert obj.stat().size_bytes == len(b"PAR1 accepted rows")
    with obj.reader("rb", pre_sign=False) as reader:
        assert reader.read() == b"PAR1 accepted rows"
    log = list(repo.branch(branch).log(max_amount=5))
    assert log[0].id == commit_id and log[0].metadata == {"dagster_run_id": "run-42"}
    assert log[-1].message == "Repository created"


class MemoryObjectStore:
    """Import sources for the fake lakeFS held in memory (the moto-backed path is in tests/integration)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: list[str] = []

    def head(self, uri: str) -> tuple[int, str, int]:
        if uri not in self.objects:
            raise FileNotFoundError(f"NoSuchKey: {uri}")
        return len(self.objects[uri]), hashlib.md5(self.objects[uri]).hexdigest(), 1_700_000_000

    def list(self, prefix_uri: str) -> list[str]:
        return sorted(u for u in self.objects if u.startswith(prefix_uri))

    def read(self, uri: str) -> bytes:
        self.reads.append(uri)
        return self.objects[uri]


SOURCES = {"s3://media/data/a.mp4": b"video-a" * 50, "s3://media/data/b.MP4": b"video-b" * 40}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def importing() -> Iterator[tuple[LakeFSResource, FakeLakeFSServer, MemoryObjectStore]]:
    store = MemoryObjectStore(dict(SOURCES))
    with run_fake_lakefs(object_store=store) as server:
        res = LakeFSResource(
            enabled=True,
            endpoint=server.endpoint,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
            repository=REPO,
        )
        yield res, server, store


def _originals() -> list[tuple[str, str]]:
    a, b = SOURCES["s3://media/data/a.mp4"], SOURCES["s3://media/data/b.MP4"]
    return [
        ("s3://media/data/a.mp4", _sha(a)),
        ("s3://media/data/b.MP4", _sha(b)),
        ("s3://media/data/a.mp4", _sha(a)),  # the same file in a second row is imported once
        ("/data/local/c.mp4", "c" * 64),
        ("", ""),  # embedded reference: nothing to import
    ]


def test_import_originals_records_entries_without_copying(importing) -> None:
    """Object-store originals appear on the batch branch under batches/<batch>/raw/<sha256><suffix>,
    pointing at the objects (no upload, no byte read), in one import commit carrying the run id;
    local originals are only counted as kept by reference."""
    res, server, store = importing
    done = res.import_originals("b1", _originals(), metadata={"dagster_run_id": "run-7"})
    a, b = (_sha(SOURCES[u]) for u in ("s3://media/data/a.mp4", "s3://media/data/b.MP4"))
    expected = {f"batches/b1/raw/{a}.mp4": "s3://media/data/a.mp4", f"batches/b1/raw/{b}.mp4": "s3://media/data/b.MP4"}
    assert (done.branch, done.paths, done.imported, done.by_reference) == ("batch-b1", expected, 2, 1)
    entries = server.state.entries_at(REPO, "batch-b1")
    assert {p: e.physical_address for p, e in entries.items()} == expected
    assert {p: e.size_bytes for p, e in entries.items()} == {p: len(SOURCES[u]) for p, u in expected.items()}
    assert server.state.count("POST", r"/objects$") == 0 and store.reads == []
    head = server.state.commit_at(REPO, "batch-b1")
    assert done.commit_id == head.id and done.import_id
    assert head.metadata == {"kiwi_batch": "b1", "dagster_run_id": "run-7"}
    body = server.state.import_bodies[0]
    assert sorted(p["type"] for p in body["paths"]) == ["object", "object"]
    line = done.summary()
    assert "\n" not in line and "1 not on an importable object store stay by reference" in line
    meta = done.metadata(listed=1)
    assert (meta["lakefs_raw_import_id"], meta["lakefs_raw_objects"]) == (done.import_id, 2)
    assert meta["lakefs_raw_paths"].value == dict(sorted(expected.items())[:1])
    assert server.state.objects_at(REPO, "batch-b1")[f"batches/b1/raw/{a}.mp4"] == SOURCES["s3://media/data/a.mp4"]


def test_import_originals_rerun_imports_nothing(importing) -> None:
    """Running the import again for the same objects starts no import and leaves the branch head as it was."""
    res, server, _ = importing
    first = res.import_originals("b1", _originals())
    again = res.import_originals("b1", _originals())
    assert (again.imported, again.import_id, again.commit_id, again.paths) == (0, "", first.commit_id, first.paths)
    assert server.state.count("POST", r"/import$") == 1
    assert "no new raw originals to import" in again.summary()


def test_import_failure_is_one_line_and_changes_nothing(importing) -> None:
    """An import the server fails raises one LakeFSError naming lakeFS and the batch; the branch keeps no entry."""
    res, server, _ = importing
    res.branch_for_batch("b1")
    before = server.state.commit_at(REPO, "batch-b1").id
    server.state.fail_imports = "access denied to s3://media"
    with pytest.raises(LakeFSError) as info:
        res.import_originals("b1", _originals())
    message = str(info.value)
    assert message.startswith("lakeFS import of raw originals for batch b1 failed")
    assert "access denied to s3://media" in message and "\n" not in message
    assert server.state.commit_at(REPO, "batch-b1").id == before
    assert server.state.entries_at(REPO, "batch-b1") == {}


def test_missing_source_object_fails_the_import(importing) -> None:
    """A source object that vanished after ingestion fails the whole import (nothing half-imported)."""
    res, server, store = importing
    del store.objects["s3://media/data/b.MP4"]
    with pytest.raises(LakeFSError, match=r"batch b1 failed .*b\.MP4"):
        res.import_originals("b1", _originals())
    assert server.state.entries_at(REPO, "batch-b1") == {}


def test_server_without_import_support_keeps_everything_by_reference() -> None:
    """When the lakeFS blockstore cannot import, no import is attempted and every original stays by reference."""
    with run_fake_lakefs(import_support=False, object_store=MemoryObjectStore(dict(SOURCES))) as server:
        res = LakeFSResource(
            enabled=True,
            endpoint=server.endpoint,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
        )
        done = res.import_originals("b1", _originals())
        assert (done.paths, done.imported, done.by_reference) == ({}, 0, 3)
        assert server.state.count("POST", r"/import$") == 0
    assert LakeFSResource().import_originals("b1", _originals()) is None
