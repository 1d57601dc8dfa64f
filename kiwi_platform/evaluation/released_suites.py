"""Read the public benchmarks exactly as upstream's `test_benchmark.py` reads them, into a `Suite`.

Formats (paths are joined to `root` the way upstream concatenates `data_root + path`):

- `openve-bench`: `benchmark_videos.csv` (csv.DictReader) with `original_video, prompt, edited_type`,
  `root` = the folder `original_video` is relative to (upstream: `./benchmark/`). Rows whose
  `edited_type` upstream skips (`creative_edit`, `camera_edit`, `subtitle_edit`) are skipped the same
  way and counted in `ReleasedSuite.skipped`.
- `refvie-bench`: `refvie_bench.yaml`, a list of items with `src_video, instruction, ref_img,
  edit_type` (`subject` | `background`, upstream's subtask split), `root` = `./benchmark/RefVIE-Bench/`.
- `imgedit`: ImgEdit single-turn `singleturn.json`, `{key: {id, prompt, edit_type}}`, the image at
  `root/id` (upstream: `./benchmark/ImgEdit/singleturn/`); one-frame cases.

Case ids keep the upstream row: `<name>_<row:04d>_<file stem>` (row = upstream's `idx`; ImgEdit:
the json key), so two registered suites never clash and a case can be found in upstream's outputs
(`metadata.upstream_output` names the file upstream's script writes for it). Every bad row (missing
or unreadable media, unknown `edited_type` / `edit_type`, an empty prompt, an item without `ref_img`)
is collected and raised in one `SuiteError` that lists each with its row before anything is generated.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kiwi_platform.evaluation.categories import IMGEDIT, OPENVE, OPENVE_SKIPPED, REFVIE, check_category
from kiwi_platform.evaluation.suites import Case, Suite, SuiteError

Format = Literal["openve-bench", "refvie-bench", "imgedit"]
FORMATS: tuple[str, ...] = ("openve-bench", "refvie-bench", "imgedit")
MAX_LISTED = 20


@dataclass
class ReleasedSuite:
    """The cases read from a released benchmark file, plus what was skipped on purpose (upstream's rule)."""

    suite: Suite
    format: str
    source: Path
    rows: int  # data rows / items in the file
    skipped: dict[str, int] = field(default_factory=dict)  # edited_type -> rows skipped as upstream skips them


def _stem(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem)[:48] or "case"


def _media_problem(root: Path, rel: Any, column: str) -> str | None:
    if not isinstance(rel, str) or not rel.strip():
        return f"{column} is empty"
    path = root / rel
    if not path.is_file():
        return f"{column} {rel!r} does not exist (looked in {root})"
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        return f"{column} {rel!r} cannot be read ({exc.strerror or exc})"
    return None


def _openve(path: Path, root: Path, name: str) -> Iterator[tuple[str, Case | None, list[str], str | None]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("original_video", "prompt", "edited_type") if c not in (reader.fieldnames or [])]
            if missing:
                raise SuiteError(
                    f"{path}: missing column(s) {', '.join(missing)} (expected original_video,prompt,edited_type)"
                )
            records = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SuiteError(f"{path} is not a readable UTF-8 CSV: {exc}") from None
    for idx, row in enumerate(records):
        where = f"row {idx + 2} (idx {idx})"
        kind = (row.get("edited_type") or "").strip()
        if kind in OPENVE_SKIPPED:
            yield where, None, [], kind
            continue
        video, prompt = (row.get("original_video") or "").strip(), (row.get("prompt") or "").strip()
        problems = [p for p in (_media_problem(root, video, "original_video"),) if p]
        if not prompt:
            problems.append("empty prompt")
        if reason := check_category(OPENVE, kind):
            problems.append(reason.replace("category", "edited_type"))
        out = Path(video).name.replace(".mp4", "_edited.mp4")
        meta = {"origin": "openve-bench", "row": idx, "original_video": video, "upstream_output": out}
        case = Case(f"{name}_{idx:04d}_{_stem(video)}", OPENVE, kind, prompt, video, metadata=meta)
        yield where, case, problems, None


def _refvie(path: Path, root: Path, name: str) -> Iterator[tuple[str, Case | None, list[str], str | None]]:
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SuiteError(f"{path} is not readable YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(items, list):
        raise SuiteError(f"{path}: expected a list of items (src_video, instruction, ref_img, edit_type)")
    for idx, item in enumerate(items):
        where = f"item {idx}"
        if not isinstance(item, dict):
            yield where, None, ["not a mapping with src_video, instruction, ref_img, edit_type"], None
            continue
        video, prompt = item.get("src_video") or "", str(item.get("instruction") or "").strip()
        kind = str(item.get("edit_type") or "")
        problems = [p for p in (_media_problem(root, video, "src_video"),) if p]
        if not item.get("ref_img"):
            problems.append("no ref_img (every RefVIE-Bench item needs its reference image)")
        elif p := _media_problem(root, item["ref_img"], "ref_img"):
            problems.append(p)
        if not prompt:
            problems.append("empty instruction")
        if reason := check_category(REFVIE, kind):
            problems.append(reason.replace("category", "edit_type"))
        if problems:
            yield where, None, problems, None
            continue
        out = f"{idx}_{prompt[:10]}_{Path(video).name}"
        meta = {"origin": "refvie-bench", "row": idx, "src_video": video, "upstream_output": out}
        case = Case(
            f"{name}_{idx:04d}_{_stem(video)}", REFVIE, kind, prompt, video, str(item["ref_img"]), metadata=meta
        )
        yield where, case, [], None


def _imgedit(path: Path, root: Path, name: str) -> Iterator[tuple[str, Case | None, list[str], str | None]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SuiteError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: expected an object {{key: {{id, prompt, edit_type}}}}")
    for key, item in data.items():
        where = f"key {key!r}"
        if not isinstance(item, dict):
            yield where, None, ["not an object with id, prompt, edit_type"], None
            continue
        image, prompt, kind = (
            item.get("id") or "",
            str(item.get("prompt") or "").strip(),
            str(item.get("edit_type") or ""),
        )
        problems = [p for p in (_media_problem(root, image, "id"),) if p]
        if not prompt:
            problems.append("empty prompt")
        if reason := check_category(IMGEDIT, kind):
            problems.append(reason)
        out = f"{kind}/{key}{Path(str(image)).name}"
        meta = {"origin": "imgedit", "key": key, "id": image, "upstream_output": out, "media": "image"}
        safe_key = re.sub(r"[^A-Za-z0-9_-]+", "-", str(key))[:32]
        case = Case(f"{name}_{safe_key}_{_stem(str(image))}", IMGEDIT, kind, prompt, str(image), metadata=meta)
        yield where, (None if problems else case), problems, None


_READERS = {"openve-bench": _openve, "refvie-bench": _refvie, "imgedit": _imgedit}


def read_released_suite(fmt: str, file: str | Path, root: str | Path, name: str) -> ReleasedSuite:
    """The suite in `file` (format `fmt`), media under `root`; one `SuiteError` listing every bad row."""
    if fmt not in _READERS:
        raise SuiteError(f"unknown suite format {fmt!r} (expected one of {', '.join(FORMATS)})")
    path, base = Path(file), Path(root).resolve()
    if not path.is_file():
        raise SuiteError(f"suite file {path} does not exist")
    if not base.is_dir():
        raise SuiteError(f"suite root {root} is not a folder")
    cases: list[Case] = []
    problems: list[str] = []
    skipped: Counter[str] = Counter()
    rows = 0
    for where, case, row_problems, skip in _READERS[fmt](path, base, name):
        rows += 1
        if skip:
            skipped[skip] += 1
        elif row_problems:
            problems.append(f"{where}: {'; '.join(row_problems)}")
        elif case is not None:
            cases.append(case)
    if problems:
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise SuiteError(
            f"{path}: {len(problems)} bad row(s) of {rows}, nothing registered: "
            + " | ".join(problems[:MAX_LISTED])
            + more
        )
    if not cases:
        raise SuiteError(f"{path}: no case to evaluate ({rows} rows, {sum(skipped.values())} skipped as upstream does)")
    ids = Counter(c.case_id for c in cases)
    if clash := [i for i, n in ids.items() if n > 1]:
        raise SuiteError(f"{path}: case ids clash ({', '.join(clash[:5])}); two rows name the same item")
    return ReleasedSuite(Suite(name, base, cases), fmt, path.resolve(), rows, dict(sorted(skipped.items())))
