"""A small in-memory lakeFS REST server, so tests drive the real `lakefs` SDK without a lakeFS binary.

It speaks the subset of the lakeFS `/api/v1` API that `kiwi_platform.resources.lakefs` uses through the
high-level SDK (same paths, JSON shapes, status codes and `{"message": ...}` error bodies as lakeFS),
with HTTP basic auth. Repositories, branches (committed tree + staged changes), commits and objects
live in memory; commit ids are sha256 digests of the commit content, so equal histories give equal ids.

Endpoints (all under /api/v1):
  GET  /healthcheck                                          204
  GET  /config                                               storage config (local blockstore, no presign)
  GET  /repositories                                         list
  POST /repositories                                         create (201, 409 if it exists)
  GET  /repositories/{repo}                                  get (404)
  GET  /repositories/{repo}/branches                         list
  POST /repositories/{repo}/branches                         create (201 text commit id, 409, 404 source)
  GET  /repositories/{repo}/branches/{branch}                get -> Ref
  GET  /repositories/{repo}/branches/{branch}/diff           uncommitted changes
  POST /repositories/{repo}/branches/{branch}/objects?path=  raw upload (octet-stream or chunked body)
  POST /repositories/{repo}/branches/{branch}/commits        commit (201; 400 "no changes")
  GET  /repositories/{repo}/commits/{ref}                    get commit (any ref: branch or commit id)
  GET  /repositories/{repo}/refs/{ref}/commits               log
  GET  /repositories/{repo}/refs/{ref}/objects/ls            list objects (prefix/after/amount/delimiter)
  GET  /repositories/{repo}/refs/{ref}/objects/stat?path=    stat
  GET|HEAD /repositories/{repo}/refs/{ref}/objects?path=     read object bytes
  POST /repositories/{repo}/refs/{src}/merge/{dest}          three-way merge (200; 409 conflict; 400 no changes)
  POST /repositories/{repo}/branches/{branch}/import         zero-copy import (202 {"id"}; 400 when unsupported)
  GET  /repositories/{repo}/branches/{branch}/import?id=     ImportStatus (completed / error / commit)
  DELETE /repositories/{repo}/branches/{branch}/import?id=   cancel (204; 409 when already completed)

Imports (`ImportCreation` -> `ImportCreationResponse`, polled as `ImportStatus`) record each source
object as an entry of the branch whose physical address is the object-store URI: size and checksum
(the S3 ETag) come from a HEAD of the object, no bytes are copied, and reading the entry back reads
the object store, as lakeFS does. Sources are reached through `ObjectStore` (boto3 with the standard
AWS variables by default, so tests point both lakeFS and Kiwi at the same moto server). An import
is all or nothing: a missing source or an injected failure (`FakeLakeFS.fail_imports`) ends it with
an `error` and changes nothing on the branch; success adds one commit, like lakeFS.

Not implemented (answer 501): presigned/staging uploads, multipart form uploads, tags, deletes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

API = "/api/v1"
_REPO_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_BRANCH_NAME = re.compile(r"^\w[-\w]*$")


class ApiError(Exception):
    """An error answered as lakeFS does: a status code and `{"message": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class FakeObject:
    """One stored object version; `checksum` is the md5 hex digest, as lakeFS reports for local storage.

    An imported entry holds no bytes: `physical_address` is the object-store URI it points at,
    `size` its size there and `checksum` its ETag.
    """

    data: bytes
    checksum: str
    content_type: str
    mtime: int
    metadata: dict[str, str] = field(default_factory=dict)
    physical_address: str = ""
    size: int | None = None

    @property
    def size_bytes(self) -> int:
        return len(self.data) if self.size is None else self.size


class ObjectStore(Protocol):
    """How the fake reaches import sources: HEAD (size, etag, mtime), list under a prefix, and read."""

    def head(self, uri: str) -> tuple[int, str, int]: ...

    def list(self, prefix_uri: str) -> list[str]: ...

    def read(self, uri: str) -> bytes: ...


class Boto3ObjectStore:
    """`s3://` sources through boto3 with the standard AWS environment (endpoint, keys, region)."""

    def _client(self):
        import boto3

        return boto3.client("s3")

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parts = urlsplit(uri)
        if parts.scheme != "s3":
            raise ApiError(400, f"import source must match ^s3://: {uri}")
        return parts.netloc, parts.path.lstrip("/")

    def head(self, uri: str) -> tuple[int, str, int]:
        bucket, key = self._split(uri)
        meta = self._client().head_object(Bucket=bucket, Key=key)
        return int(meta["ContentLength"]), str(meta["ETag"]).strip('"'), int(meta["LastModified"].timestamp())

    def list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = self._split(prefix_uri)
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])]

    def read(self, uri: str) -> bytes:
        bucket, key = self._split(uri)
        return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()


@dataclass
class FakeImport:
    """One import process: its branch, the status fields lakeFS reports, and how many polls remain."""

    id: str
    branch: str
    polls_left: int
    ingested: int = 0
    commit_id: str | None = None
    error: str | None = None
    cancelled: bool = False
    update_time: float = field(default_factory=time.time)


@dataclass
class FakeCommit:
    id: str
    parents: list[str]
    message: str
    metadata: dict[str, str]
    tree: dict[str, FakeObject]
    creation_date: int
    generation: int
    committer: str

    @property
    def meta_range_id(self) -> str:
        return _tree_digest(self.tree)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "parents": list(self.parents),
            "committer": self.committer,
            "message": self.message,
            "creation_date": self.creation_date,
            "meta_range_id": self.meta_range_id,
            "metadata": dict(self.metadata),
            "generation": self.generation,
            "version": 1,
        }


@dataclass
class FakeBranch:
    head: str
    staged: dict[str, FakeObject] = field(default_factory=dict)


@dataclass
class FakeRepo:
    name: str
    storage_namespace: str
    default_branch: str
    creation_date: int
    commits: dict[str, FakeCommit] = field(default_factory=dict)
    branches: dict[str, FakeBranch] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "id": self.name,
            "creation_date": self.creation_date,
            "default_branch": self.default_branch,
            "storage_namespace": self.storage_namespace,
            "read_only": False,
        }


def _tree_digest(tree: dict[str, FakeObject]) -> str:
    payload = json.dumps({path: obj.checksum for path, obj in sorted(tree.items())})
    return hashlib.sha256(payload.encode()).hexdigest()


def _commit_id(parents: list[str], message: str, metadata: dict[str, str], tree: dict[str, FakeObject]) -> str:
    payload = json.dumps(
        {"parents": parents, "message": message, "metadata": metadata, "tree": _tree_digest(tree)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class FakeLakeFS:
    """In-memory state of the fake server, plus a request log tests can read (`requests`)."""

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        *,
        import_support: bool = True,
        object_store: ObjectStore | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self.import_support = import_support
        self.object_store: ObjectStore = object_store or Boto3ObjectStore()
        self.imports: dict[str, FakeImport] = {}
        self.import_bodies: list[dict] = []  # every ImportCreation body received, for tests
        self.fail_imports: str | None = None  # set to a message: every import ends with this error
        self.import_polls = 1  # status polls answered "in progress" before an import reports completion

    # -- model helpers -------------------------------------------------------------------------
    def repo(self, name: str) -> FakeRepo:
        if name not in self.repos:
            raise ApiError(404, f"repository not found: {name}")
        return self.repos[name]

    def resolve(self, repo: FakeRepo, ref: str) -> FakeCommit:
        """Resolve a branch name, full commit id or unique commit-id prefix (>= 6 chars) to a commit."""
        if ref in repo.branches:
            return repo.commits[repo.branches[ref].head]
        if ref in repo.commits:
            return repo.commits[ref]
        matches = [c for cid, c in repo.commits.items() if len(ref) >= 6 and cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise ApiError(404, f"ref not found: {ref}")

    def view(self, repo: FakeRepo, ref: str) -> dict[str, FakeObject]:
        """Objects visible at `ref`: a branch shows its staged changes on top of its head commit."""
        tree = dict(self.resolve(repo, ref).tree)
        if ref in repo.branches:
            tree.update(repo.branches[ref].staged)
        return tree

    def add_commit(
        self, repo: FakeRepo, parents: list[str], message: str, metadata: dict[str, str], tree: dict[str, FakeObject]
    ) -> FakeCommit:
        generation = 1 + max((repo.commits[p].generation for p in parents), default=0)
        commit = FakeCommit(
            id=_commit_id(parents, message, metadata, tree),
            parents=list(parents),
            message=message,
            metadata=dict(metadata),
            tree=dict(tree),
            creation_date=int(time.time()),
            generation=generation,
            committer=self.access_key_id,
        )
        repo.commits.setdefault(commit.id, commit)
        return repo.commits[commit.id]

    def ancestors(self, repo: FakeRepo, commit_id: str) -> list[str]:
        """Commit ids reachable from `commit_id`, newest generation first (the log order)."""
        seen: set[str] = set()
        stack = [commit_id]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            stack.extend(repo.commits[cid].parents)
        return sorted(seen, key=lambda c: (-repo.commits[c].generation, c))

    def merge_base(self, repo: FakeRepo, left: str, right: str) -> FakeCommit | None:
        common = set(self.ancestors(repo, left)) & set(self.ancestors(repo, right))
        if not common:
            return None
        return repo.commits[max(common, key=lambda c: (repo.commits[c].generation, c))]

    def objects_at(self, repo_name: str, ref: str) -> dict[str, bytes]:
        """Test helper: path -> bytes visible at `ref` (committed + staged for branches); imported
        entries are read from their object store, as lakeFS serves them."""
        with self.lock:
            repo = self.repo(repo_name)
            return {path: self.data_of(obj) for path, obj in self.view(repo, ref).items()}

    def entries_at(self, repo_name: str, ref: str) -> dict[str, FakeObject]:
        """Test helper: path -> entry at `ref`, without reading imported objects."""
        with self.lock:
            return dict(self.view(self.repo(repo_name), ref))

    def data_of(self, obj: FakeObject) -> bytes:
        return self.object_store.read(obj.physical_address) if obj.physical_address else obj.data

    def commit_at(self, repo_name: str, ref: str) -> FakeCommit:
        """Test helper: the commit a ref points to."""
        with self.lock:
            repo = self.repo(repo_name)
            return self.resolve(repo, ref)

    def count(self, method: str, path_pattern: str) -> int:
        """Test helper: how many requests with `method` had a path matching the regex `path_pattern`."""
        return sum(1 for m, p in self.requests if m == method and re.search(path_pattern, p))


def _paginate(items: list, key, query: dict[str, str]) -> dict:
    after = query.get("after", "")
    amount = int(query.get("amount", "100") or 100)
    amount = 1000 if amount < 0 else max(1, min(amount, 1000))
    remaining = [item for item in items if key(item) > after] if after else list(items)
    page = remaining[:amount]
    has_more = len(remaining) > amount
    return {
        "pagination": {
            "has_more": has_more,
            "next_offset": key(page[-1]) if (page and has_more) else "",
            "results": len(page),
            "max_per_page": 1000,
        },
        "results": page,
    }


def _object_stats(path: str, obj: FakeObject, namespace: str) -> dict:
    return {
        "path": path,
        "path_type": "object",
        "physical_address": obj.physical_address or f"{namespace.rstrip('/')}/data/{obj.checksum}",
        "checksum": obj.checksum,
        "size_bytes": obj.size_bytes,
        "mtime": obj.mtime,
        "metadata": dict(obj.metadata),
        "content_type": obj.content_type,
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeLakeFS/1.0"
    protocol_version = "HTTP/1.1"
    state: FakeLakeFS  # set on the subclass made per server

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    # -- plumbing -------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body and self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def _json(self, status: int, payload) -> None:
        self._send(status, json.dumps(payload).encode())

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (self.state.access_key_id, self.state.secret_access_key)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body = self._read_body() if self.command in ("POST", "PUT") else b""
        with self.state.lock:
            self.state.requests.append((self.command, path))
        try:
            if not path.startswith(API):
                raise ApiError(404, "not found")
            route = path[len(API) :]
            if route == "/healthcheck" and self.command == "GET":
                self._send(204)
                return
            if not self._authorized():
                raise ApiError(401, "error authenticating request")
            for method, pattern, handler in _ROUTES:
                match = pattern.fullmatch(route)
                if match and method == self.command:
                    args = [unquote(g) for g in match.groups()]
                    with self.state.lock:
                        handler(self, *args, query=query, body=body)
                    return
            raise ApiError(501, f"fake lakeFS does not implement {self.command} {route}")
        except ApiError as err:
            self._json(err.status, {"message": err.message})
        except (ValueError, KeyError, TypeError) as err:
            self._json(400, {"message": f"bad request: {err}"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    def _load(self, body: bytes) -> dict:
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError as err:
            raise ApiError(400, f"invalid JSON body: {err}") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "JSON body must be an object")
        return payload

    # -- handlers -------------------------------------------------------------------------------
    def get_config(self, *, query, body) -> None:
        storage = {
            "blockstore_type": "s3",
            "blockstore_namespace_example": "s3://example-bucket/",
            "blockstore_namespace_ValidityRegex": "^(s3|local)://",  # lenient: tests use local:// namespaces
            "default_namespace_prefix": "s3://",
            "pre_sign_support": False,
            "pre_sign_support_ui": False,
            "import_support": self.state.import_support,
            "import_validity_regex": "^s3://",
        }
        self._json(200, {"version_config": {"version": "1.0.0-fake"}, "storage_config": storage})

    def list_repos(self, *, query, body) -> None:
        repos = sorted(self.state.repos.values(), key=lambda r: r.name)
        page = _paginate([r.to_json() for r in repos], lambda r: r["id"], query)
        self._json(200, page)

    def create_repo(self, *, query, body) -> None:
        payload = self._load(body)
        name = payload.get("name", "")
        if not _REPO_NAME.match(name):
            raise ApiError(400, f"repository id: invalid value: {name!r}")
        if not str(payload.get("storage_namespace", "")).strip():
            raise ApiError(400, "storage namespace: invalid value")
        if name in self.state.repos:
            raise ApiError(409, "not unique")
        default_branch = payload.get("default_branch") or "main"
        repo = FakeRepo(name, payload["storage_namespace"], default_branch, int(time.time()))
        if query.get("bare") != "true":
            root = self.state.add_commit(repo, [], "Repository created", {}, {})
            repo.branches[default_branch] = FakeBranch(head=root.id)
        self.state.repos[name] = repo
        self._json(201, repo.to_json())

    def get_repo(self, repo: str, *, query, body) -> None:
        self._json(200, self.state.repo(repo).to_json())

    def list_branches(self, repo: str, *, query, body) -> None:
        model = self.state.repo(repo)
        prefix = query.get("prefix", "")
        refs = [
            {"id": name, "commit_id": b.head} for name, b in sorted(model.branches.items()) if name.startswith(prefix)
        ]
        self._json(200, _paginate(refs, lambda r: r["id"], query))

    def create_branch(self, repo: str, *, query, body) -> None:
        model = self.state.repo(repo)
        payload = self._load(body)
        name, source = payload.get("name", ""), payload.get("source", "")
        if not _BRANCH_NAME.match(name):
            raise ApiError(400, f"branch id: invalid value: {name!r}")
        if name in model.branches:
            raise ApiError(409, "branch already exists")
        commit = self.state.resolve(model, source)
        model.branches[name] = FakeBranch(head=commit.id)
        self._send(201, commit.id.encode(), content_type="text/html")

    def _branch(self, model: FakeRepo, branch: str) -> FakeBranch:
        if branch not in model.branches:
            raise ApiError(404, f"branch not found: {branch}")
        return model.branches[branch]

    def get_branch(self, repo: str, branch: str, *, query, body) -> None:
        model = self.state.repo(repo)
        self._json(200, {"id": branch, "commit_id": self._branch(model, branch).head})

    def diff_branch(self, repo: str, branch: str, *, query, body) -> None:
        model = self.state.repo(repo)
        state = self._branch(model, branch)
        committed = model.commits[state.head].tree
        prefix = query.get("prefix", "")
        diffs = []
        for path, obj in sorted(state.staged.items()):
            if not path.startswith(prefix):
                continue
            before = committed.get(path)
            if before is not None and before.checksum == obj.checksum:
                continue
            diffs.append(
                {
                    "type": "added" if before is None else "changed",
                    "path": path,
                    "path_type": "object",
                    "size_bytes": obj.size_bytes,
                }
            )
        self._json(200, _paginate(diffs, lambda d: d["path"], query))

    def upload_object(self, repo: str, branch: str, *, query, body) -> None:
        model = self.state.repo(repo)
        state = self._branch(model, branch)
        path = query.get("path", "")
        if not path:
            raise ApiError(400, "path is required")
        content_type = self.headers.get("Content-Type", "application/octet-stream")
        if content_type.startswith("multipart/"):
            raise ApiError(501, "fake lakeFS only implements raw (octet-stream) uploads")
        if self.headers.get("If-None-Match") == "*" and path in self.state.view(model, branch):
            raise ApiError(412, "object exists")
        metadata = {
            k[len("X-Lakefs-Meta-") :]: v for k, v in self.headers.items() if k.lower().startswith("x-lakefs-meta-")
        }
        obj = FakeObject(body, hashlib.md5(body).hexdigest(), content_type, int(time.time()), metadata)
        state.staged[path] = obj
        self._json(201, _object_stats(path, obj, model.storage_namespace))

    def commit(self, repo: str, branch: str, *, query, body) -> None:
        model = self.state.repo(repo)
        state = self._branch(model, branch)
        payload = self._load(body)
        head = model.commits[state.head]
        tree = dict(head.tree)
        tree.update(state.staged)
        if _tree_digest(tree) == _tree_digest(head.tree) and not payload.get("allow_empty"):
            state.staged.clear()
            raise ApiError(400, "commit: no changes")
        commit = self.state.add_commit(
            model, [head.id], payload.get("message", ""), payload.get("metadata") or {}, tree
        )
        state.head, state.staged = commit.id, {}
        self._json(201, commit.to_json())

    def get_commit(self, repo: str, ref: str, *, query, body) -> None:
        model = self.state.repo(repo)
        self._json(200, self.state.resolve(model, ref).to_json())

    def log_commits(self, repo: str, ref: str, *, query, body) -> None:
        model = self.state.repo(repo)
        head = self.state.resolve(model, ref)
        commits = [model.commits[c].to_json() for c in self.state.ancestors(model, head.id)]
        after = query.get("after", "")
        if after:  # log pages by position in history, not by sort key
            ids = [c["id"] for c in commits]
            commits = commits[ids.index(after) + 1 :] if after in ids else []
        self._json(200, self._log_page(commits, query))

    def _log_page(self, commits: list[dict], query: dict[str, str]) -> dict:
        amount = max(1, min(int(query.get("amount", "100") or 100), 1000))
        page, has_more = commits[:amount], len(commits) > amount
        return {
            "pagination": {
                "has_more": has_more,
                "next_offset": page[-1]["id"] if has_more else "",
                "results": len(page),
                "max_per_page": 1000,
            },
            "results": page,
        }

    def list_objects(self, repo: str, ref: str, *, query, body) -> None:
        model = self.state.repo(repo)
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        entries: dict[str, dict] = {}
        for path, obj in sorted(self.state.view(model, ref).items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter, 1)[0] + delimiter
                entries[common] = {
                    "path": common,
                    "path_type": "common_prefix",
                    "physical_address": "",
                    "checksum": "",
                    "mtime": 0,
                }
            else:
                entries[path] = _object_stats(path, obj, model.storage_namespace)
        self._json(200, _paginate(sorted(entries.values(), key=lambda e: e["path"]), lambda e: e["path"], query))

    def stat_object(self, repo: str, ref: str, *, query, body) -> None:
        model = self.state.repo(repo)
        path = query.get("path", "")
        tree = self.state.view(model, ref)
        if path not in tree:
            raise ApiError(404, f"object not found: {path}")
        self._json(200, _object_stats(path, tree[path], model.storage_namespace))

    def get_object(self, repo: str, ref: str, *, query, body) -> None:
        model = self.state.repo(repo)
        path = query.get("path", "")
        tree = self.state.view(model, ref)
        if path not in tree:
            raise ApiError(404, f"object not found: {path}")
        obj = tree[path]
        data = self.state.data_of(obj)
        self._send(200, data, content_type=obj.content_type, headers={"ETag": f'"{obj.checksum}"'})

    def merge(self, repo: str, source: str, dest: str, *, query, body) -> None:
        model = self.state.repo(repo)
        payload = self._load(body)
        dest_state = self._branch(model, dest)
        committed = model.commits[dest_state.head].tree
        if any(getattr(committed.get(p), "checksum", None) != o.checksum for p, o in dest_state.staged.items()):
            raise ApiError(400, "can't apply meta-range on dirty branch")
        src_commit = self.state.resolve(model, source)
        dst_commit = model.commits[dest_state.head]
        base = self.state.merge_base(model, src_commit.id, dst_commit.id)
        base_tree = base.tree if base else {}
        merged: dict[str, FakeObject] = {}
        strategy = payload.get("strategy") or ""
        for path in sorted(set(src_commit.tree) | set(dst_commit.tree) | set(base_tree)):
            s, d, b = (t.get(path) for t in (src_commit.tree, dst_commit.tree, base_tree))
            key = [o.checksum if o else None for o in (s, d, b)]
            if key[0] == key[1] or key[0] == key[2]:
                chosen = d
            elif key[1] == key[2] or strategy == "source-wins":
                chosen = s
            elif strategy == "dest-wins":
                chosen = d
            else:
                self._json(409, {"message": f"conflict found: {path}", "reference": ""})
                return
            if chosen is not None:
                merged[path] = chosen
        if _tree_digest(merged) == _tree_digest(dst_commit.tree) and not payload.get("allow_empty"):
            raise ApiError(400, "no changes")
        parents = [dst_commit.id] if payload.get("squash_merge") else [dst_commit.id, src_commit.id]
        message = payload.get("message") or f"Merge '{source}' into '{dest}'"
        commit = self.state.add_commit(model, parents, message, payload.get("metadata") or {}, merged)
        dest_state.head = commit.id
        self._json(200, {"reference": commit.id})

    # -- imports --------------------------------------------------------------------------------
    def start_import(self, repo: str, branch: str, *, query, body) -> None:
        """Validate an ImportCreation, then ingest it at once (all or nothing); polls report the outcome."""
        model = self.state.repo(repo)
        self._branch(model, branch)
        payload = self._load(body)
        if not self.state.import_support:
            raise ApiError(400, "import is not supported for this blockstore")
        paths, commit = payload.get("paths"), payload.get("commit")
        if not isinstance(paths, list) or not paths or not isinstance(commit, dict) or "message" not in commit:
            raise ApiError(400, "bad request: paths (non-empty) and commit.message are required")
        for loc in paths:
            if loc.get("type") not in ("object", "common_prefix") or not loc.get("path") or "destination" not in loc:
                raise ApiError(400, f"bad request: invalid import location {loc}")
            if not re.match(r"^s3://", loc["path"]):
                raise ApiError(400, f"import path must match ^s3://: {loc['path']}")
        self.state.import_bodies.append(payload)
        job = FakeImport(
            id=hashlib.sha256(f"{repo}/{branch}/{len(self.state.imports)}".encode()).hexdigest()[:20],
            branch=branch,
            polls_left=self.state.import_polls,
        )
        self.state.imports[job.id] = job
        try:
            entries = self._import_entries(paths)
            if self.state.fail_imports:
                raise ApiError(500, self.state.fail_imports)
            state = model.branches[branch]
            head = model.commits[state.head]
            tree = {**head.tree, **entries}
            if _tree_digest(tree) == _tree_digest(head.tree) and not commit.get("allow_empty"):
                raise ApiError(400, "commit: no changes")
            message = commit.get("message") or "Import objects"
            new = self.state.add_commit(model, [head.id], message, commit.get("metadata") or {}, tree)
            state.head = new.id
            job.commit_id, job.ingested = new.id, len(entries)
        except ApiError as err:
            job.error = err.message
        except Exception as err:  # the object store's own error (missing key, access denied)
            job.error = f"import from object store failed: {err}"
        self._json(202, {"id": job.id})

    def _import_entries(self, paths: list[dict]) -> dict[str, FakeObject]:
        store, entries = self.state.object_store, {}
        for loc in paths:
            if loc["type"] == "object":
                sources = [(loc["path"], loc["destination"])]
            else:
                base = loc["path"]
                sources = [(uri, loc["destination"] + uri[len(base) :]) for uri in store.list(base)]
            for uri, dest in sources:
                size, etag, mtime = store.head(uri)
                entries[dest] = FakeObject(
                    b"", etag, "application/octet-stream", mtime, physical_address=uri, size=size
                )
        return entries

    def _import_job(self, branch: str, query: dict[str, str]) -> FakeImport:
        job = self.state.imports.get(query.get("id", ""))
        if job is None or job.branch != branch:
            raise ApiError(404, f"import not found: {query.get('id', '')}")
        return job

    def import_status(self, repo: str, branch: str, *, query, body) -> None:
        model = self.state.repo(repo)
        job = self._import_job(branch, query)
        status: dict = {"update_time": datetime.fromtimestamp(job.update_time, UTC).isoformat()}
        if job.polls_left > 0 and not job.cancelled:
            job.polls_left -= 1
            status.update(completed=False, ingested_objects=0)
        elif job.error or job.cancelled:
            status.update(completed=False, error={"message": job.error or "import canceled"})
        else:
            commit = model.commits[job.commit_id]
            status.update(
                completed=True,
                ingested_objects=job.ingested,
                metarange_id=commit.meta_range_id,
                commit=commit.to_json(),
            )
        self._json(200, status)

    def cancel_import(self, repo: str, branch: str, *, query, body) -> None:
        self.state.repo(repo)
        job = self._import_job(branch, query)
        if job.commit_id and job.polls_left == 0:
            raise ApiError(409, "import already completed")
        job.cancelled = True
        self._send(204)


_SEG = r"([^/]+)"
_ROUTES = [
    ("GET", re.compile(r"/config"), _Handler.get_config),
    ("GET", re.compile(r"/repositories"), _Handler.list_repos),
    ("POST", re.compile(r"/repositories"), _Handler.create_repo),
    ("GET", re.compile(rf"/repositories/{_SEG}"), _Handler.get_repo),
    ("GET", re.compile(rf"/repositories/{_SEG}/branches"), _Handler.list_branches),
    ("POST", re.compile(rf"/repositories/{_SEG}/branches"), _Handler.create_branch),
    ("GET", re.compile(rf"/repositories/{_SEG}/branches/{_SEG}"), _Handler.get_branch),
    ("GET", re.compile(rf"/repositories/{_SEG}/branches/{_SEG}/diff"), _Handler.diff_branch),
    ("POST", re.compile(rf"/repositories/{_SEG}/branches/{_SEG}/objects"), _Handler.upload_object),
    ("POST", re.compile(rf"/repositories/{_SEG}/branches/{_SEG}/commits"), _Handler.commit),
    ("GET", re.compile(rf"/repositories/{_SEG}/commits/{_SEG}"), _Handler.get_commit),
    ("GET", re.compile(rf"/repositories/{_SEG}/refs/{_SEG}/commits"), _Handler.log_commits),
    ("GET", re.compile(rf"/repositories/{_SEG}/refs/{_SEG}/objects/ls"), _Handler.list_objects),
    ("GET", re.compile(rf"/repositories/{_SEG}/refs/{_SEG}/objects/stat"), _Handler.stat_object),
    ("GET", re.compile(rf"/repositories/{_SEG}/refs/{_SEG}/objects"), _Handler.get_object),
    ("HEAD", re.compile(rf"/repositories/{_SEG}/refs/{_SEG}/objects"), _Handler.get_object),
    ("POST", re.compile(rf"/repositories/{_SEG}/refs/{_SEG}/merge/{_SEG}"), _Handler.merge),
    ("POST", re.compile(rf"/repositories/{_SEG}/branches/{_SEG}/import"), _Handler.start_import),
    ("GET", re.compile(rf"/repositories/{_SEG}/branches/{_SEG}/import"), _Handler.import_status),
    ("DELETE", re.compile(rf"/repositories/{_SEG}/branches/{_SEG}/import"), _Handler.cancel_import),
]


class _Server(ThreadingHTTPServer):
    """Threaded server that also drops kept-alive client connections on close, like a stopped process."""

    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class FakeLakeFSServer:
    """What `run_fake_lakefs()` yields: where to connect, with which credentials, and the live state."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    state: FakeLakeFS


def point_kiwi_at(server, monkeypatch) -> None:
    """Enable Kiwi's lakeFS resource against `server` (a FakeLakeFSServer) through its KIWI_LAKEFS_* variables."""
    monkeypatch.setenv("KIWI_LAKEFS_ENABLED", "1")
    monkeypatch.setenv("KIWI_LAKEFS_ENDPOINT", server.endpoint)
    monkeypatch.setenv("KIWI_LAKEFS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("KIWI_LAKEFS_SECRET_ACCESS_KEY", server.secret_access_key)


@contextlib.contextmanager
def run_fake_lakefs(
    access_key_id: str = "AKIAIOSFODNN7EXAMPLE",
    secret_access_key: str = "fake-secret-key",
    *,
    import_support: bool = True,
    object_store: ObjectStore | None = None,
) -> Iterator[FakeLakeFSServer]:
    """Serve a fresh fake lakeFS on 127.0.0.1 (ephemeral port) for the duration of the `with` block."""
    state = FakeLakeFS(access_key_id, secret_access_key, import_support=import_support, object_store=object_store)
    handler = type("BoundHandler", (_Handler,), {"state": state})
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="fake-lakefs", daemon=True)
    thread.start()
    try:
        host, port = httpd.server_address[:2]
        yield FakeLakeFSServer(f"http://{host}:{port}", access_key_id, secret_access_key, state)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
