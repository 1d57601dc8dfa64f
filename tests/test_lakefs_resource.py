"""The optional lakeFS resource, driven through the real `lakefs` SDK against a local fake lakeFS server."""

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
