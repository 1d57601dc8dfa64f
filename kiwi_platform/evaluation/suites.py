"""A benchmark suite: a folder of cases (cases.csv + media/ + suite.json) that DVC can version.

Layout (all paths in cases.csv are relative to the suite folder, so the folder can move):

    suite.json        name, content hash, case counts per suite kind and category
    cases.csv         case_id, suite, category, prompt, src_video, ref_image, tgt_video, mask_dir, metadata
    media/<case_id>/  source.<ext>, reference.<ext>, target.<ext>, masks/0000.png ... (as available)

Why a content hash: results are only comparable on the same cases. `Suite.content_hash` covers
every case field and the bytes of every media file (not names of folders, mtimes or the suite
name), so two folders with the same cases hash the same and any edit to a prompt, category or
pixel changes it. Each case also has its own hash, which keys generated outputs and judge scores.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.evaluation.categories import check_category
from kiwi_platform.lib.files import sha256_file, write_text_atomic

COLUMNS = ("case_id", "suite", "category", "prompt", "src_video", "ref_image", "tgt_video", "mask_dir", "metadata")
SUITE_FORMAT = 1


class SuiteError(KiwiUserError):
    """A suite folder or CSV that cannot be used as it is (the message names the file and row)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="bad_suite")


@dataclass(frozen=True)
class Case:
    """One benchmark case. Media paths are relative to the suite root (absolute while building)."""

    case_id: str
    suite: str  # "openve" | "refvie"
    category: str
    prompt: str
    src_video: str
    ref_image: str = ""
    tgt_video: str = ""
    mask_dir: str = ""  # folder of per-frame binary PNG masks (True = pixels the edit changes)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def has_target(self) -> bool:
        return bool(self.tgt_video)

    @property
    def has_reference(self) -> bool:
        return bool(self.ref_image)

    @property
    def has_mask(self) -> bool:
        return bool(self.mask_dir)


@dataclass
class Suite:
    """Cases plus the folder their relative media paths resolve against."""

    name: str
    root: Path
    cases: list[Case]
    _hashes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def path(self, rel: str) -> Path:
        return (self.root / rel) if rel else self.root

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.case_id == case_id:
                return case
        raise KeyError(case_id)

    def kinds(self) -> list[str]:
        return sorted({c.suite for c in self.cases})

    def case_hash(self, case: Case) -> str:
        """sha256 of the case's fields and its media bytes (masks included); memoised per suite object."""
        if case.case_id not in self._hashes:
            record = {
                k: v for k, v in asdict(case).items() if k not in {"src_video", "ref_image", "tgt_video", "mask_dir"}
            }
            files: dict[str, str] = {}
            for name in ("src_video", "ref_image", "tgt_video"):
                rel = getattr(case, name)
                files[name] = sha256_file(self.path(rel)) if rel else ""
            if case.mask_dir:
                masks = sorted(self.path(case.mask_dir).glob("*.png"))
                files["masks"] = hashlib.sha256("".join(sha256_file(m) for m in masks).encode()).hexdigest()
            blob = json.dumps({"case": record, "files": files}, sort_keys=True, ensure_ascii=False)
            self._hashes[case.case_id] = hashlib.sha256(blob.encode("utf-8")).hexdigest()
        return self._hashes[case.case_id]

    @property
    def content_hash(self) -> str:
        """sha256 over the case hashes in case-id order: independent of location, name and row order."""
        parts = sorted((c.case_id, self.case_hash(c)) for c in self.cases)
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {}
        for c in self.cases:
            counts.setdefault(c.suite, {}).setdefault(c.category, 0)
            counts[c.suite][c.category] += 1
        return {"name": self.name, "cases": len(self.cases), "counts": counts}


def validate_cases(cases: Iterable[Case], root: Path, source: str) -> None:
    """Raise one SuiteError listing every bad case (duplicate id, bad category, missing file)."""
    problems: list[str] = []
    seen: set[str] = set()
    for case in cases:
        where = f"{source}: case {case.case_id!r}"
        if not case.case_id or case.case_id in seen:
            problems.append(f"{where}: case ids must be non-empty and unique")
        seen.add(case.case_id)
        if reason := check_category(case.suite, case.category):
            problems.append(f"{where}: {reason}")
        if not case.prompt.strip():
            problems.append(f"{where}: empty prompt")
        for name in ("src_video", "ref_image", "tgt_video"):
            rel = getattr(case, name)
            if rel and not (root / rel).is_file():
                problems.append(f"{where}: {name} {rel!r} does not exist")
        if case.mask_dir and not (root / case.mask_dir).is_dir():
            problems.append(f"{where}: mask_dir {case.mask_dir!r} does not exist")
    if not seen:
        problems.append(f"{source}: the suite has no cases")
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise SuiteError("; ".join(problems[:10]) + more)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.stat().st_size != src.stat().st_size or sha256_file(dst) != sha256_file(src):
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)


def save_suite(suite: Suite, out_dir: str | Path, name: str | None = None) -> Suite:
    """Copy the suite's media into `out_dir/media/<case_id>/` and write cases.csv + suite.json.

    Returns the suite as loaded from its new home. Writing into the suite's own folder is allowed
    (media already in place are kept); re-saving a suite folder removes media/<id>/ folders of cases
    it no longer holds. cases.csv and suite.json are written last and atomically.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    validate_cases(suite.cases, suite.root, str(suite.root))
    was_suite = (out / "cases.csv").is_file()
    saved: list[Case] = []
    for case in suite.cases:
        folder = f"media/{case.case_id}"
        moved: dict[str, str] = {}
        for attr, stem in (("src_video", "source"), ("ref_image", "reference"), ("tgt_video", "target")):
            rel = getattr(case, attr)
            if rel:
                src = suite.path(rel)
                moved[attr] = f"{folder}/{stem}{src.suffix.lower()}"
                if src.resolve() != (out / moved[attr]).resolve():
                    _copy(src, out / moved[attr])
        if case.mask_dir:
            moved["mask_dir"] = f"{folder}/masks"
            src_dir = suite.path(case.mask_dir)
            if src_dir.resolve() != (out / moved["mask_dir"]).resolve():
                for mask in sorted(src_dir.glob("*.png")):
                    _copy(mask, out / moved["mask_dir"] / mask.name)
        saved.append(replace(case, **moved))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for case in sorted(saved, key=lambda c: c.case_id):
        row = asdict(case)
        row["metadata"] = json.dumps(case.metadata, sort_keys=True, ensure_ascii=False) if case.metadata else ""
        writer.writerow([row[c] for c in COLUMNS])
    write_text_atomic(out / "cases.csv", buf.getvalue())
    if was_suite:  # re-saving a suite folder: drop media of cases it no longer has, so DVC tracks no strays
        keep = {c.case_id for c in saved}
        for folder in (out / "media").iterdir() if (out / "media").is_dir() else []:
            if folder.is_dir() and folder.name not in keep:
                shutil.rmtree(folder)
    result = Suite(name or suite.name, out, sorted(saved, key=lambda c: c.case_id))
    meta = {"format": SUITE_FORMAT, "content_hash": result.content_hash, **result.summary()}
    write_text_atomic(out / "suite.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return result


def load_suite(suite_dir: str | Path, *, verify: bool = False) -> Suite:
    """Read a suite folder written by `save_suite`. `verify=True` re-hashes and compares with suite.json."""
    root = Path(suite_dir)
    table = root / "cases.csv"
    if not table.is_file():
        raise SuiteError(
            f"{root} is not a benchmark suite folder (no cases.csv); build one with the suite builders "
            "or load an upstream CSV with load_user_suite"
        )
    meta_path = root / "suite.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    cases: list[Case] = []
    with table.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SuiteError(f"{table}: missing column(s) {', '.join(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                metadata = json.loads(row["metadata"]) if row["metadata"] else {}
            except ValueError:
                raise SuiteError(f"{table} line {line}: metadata is not valid JSON") from None
            cases.append(Case(**{c: row[c] or "" for c in COLUMNS if c != "metadata"}, metadata=metadata))
    validate_cases(cases, root, str(table))
    suite = Suite(meta.get("name", root.name), root, cases)
    if verify and meta.get("content_hash") and meta["content_hash"] != suite.content_hash:
        raise SuiteError(
            f"{root}: content hash {suite.content_hash[:12]} differs from suite.json "
            f"({meta['content_hash'][:12]}): a case or media file changed since it was saved"
        )
    return suite


def merge_suites(suites: Iterable[Suite], out_dir: str | Path, name: str) -> Suite:
    """One folder holding the cases of several suites (case ids must not clash)."""
    suites = list(suites)
    cases: list[Case] = []
    for s in suites:
        for c in s.cases:
            cases.append(_absolute(c, s.root))
    return save_suite(Suite(name, Path("/"), cases), out_dir)


def _absolute(case: Case, root: Path) -> Case:
    fields = {
        k: str((root / getattr(case, k)).resolve())
        for k in ("src_video", "ref_image", "tgt_video", "mask_dir")
        if getattr(case, k)
    }
    return replace(case, **fields)
