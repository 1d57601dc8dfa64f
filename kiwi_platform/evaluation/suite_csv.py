"""Load a user-supplied suite in the upstream CSV format: `prompt, src_video[, tgt_video][, ref_image]`.

Paths are relative to the CSV's folder (as in the upstream manifests). Optional columns:
`category` (else guessed from the prompt, see `categories.guess_category`), `case_id` (else
`<csv stem>_<row>`), `suite` (openve | refvie; else refvie when the row has a reference image).
Every bad row is reported in one error, with its row number and what is wrong, before any
generation starts: a benchmark that silently skips cases would not be comparable.
"""

from __future__ import annotations

import csv
from pathlib import Path

from kiwi_platform.evaluation.categories import OPENVE, REFVIE, SUITE_KINDS, check_category, guess_category
from kiwi_platform.evaluation.suites import Case, Suite, SuiteError, validate_cases

REQUIRED = ("prompt", "src_video")
OPTIONAL = ("tgt_video", "ref_image", "category", "case_id", "suite")


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows (stripped strings) of an upstream-style CSV.

    Upstream manifests leave prompts containing commas unquoted; every other column is a path
    without commas, so a row's surplus fields belong to the prompt and are joined back into it
    (the same repair the ingestion manifest reader makes).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            records = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SuiteError(f"{path} is not a readable UTF-8 CSV: {exc}") from None
    if not records:
        return [], []
    header = [h.strip() for h in records[0]]
    rows = []
    for fields in records[1:]:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > len(header) and "prompt" in header:
            at, surplus = header.index("prompt"), len(fields) - len(header)
            fields = fields[:at] + [",".join(fields[at : at + surplus + 1])] + fields[at + surplus + 1 :]
        rows.append({h: f.strip() for h, f in zip(header, fields)})
    return header, rows


def load_user_suite(csv_path: str | Path, *, kind: str | None = None, name: str | None = None) -> Suite:
    """A Suite whose root is the CSV's folder (media stay where they are; `save_suite` copies them)."""
    path = Path(csv_path)
    if not path.is_file():
        raise SuiteError(f"suite CSV {path} does not exist")
    if kind is not None and kind not in SUITE_KINDS:
        raise SuiteError(f"unknown suite kind {kind!r} (expected one of {', '.join(SUITE_KINDS)})")
    root = path.parent.resolve()
    header, raw_rows = read_csv_rows(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SuiteError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(expected prompt,src_video[,tgt_video][,ref_image][,category])"
        )
    problems: list[str] = []
    cases: list[Case] = []
    for number, row in enumerate(raw_rows, start=1):
        where = f"{path.name} row {number}"
        prompt, src, ref, tgt = (
            row.get("prompt", ""),
            row.get("src_video", ""),
            row.get("ref_image", ""),
            row.get("tgt_video", ""),
        )
        row_problems = []
        if not prompt:
            row_problems.append("empty prompt")
        if not src:
            row_problems.append("empty src_video")
        for column, rel in (("src_video", src), ("tgt_video", tgt), ("ref_image", ref)):
            if rel and Path(rel).is_absolute():
                row_problems.append(f"{column} {rel!r} must be relative to the CSV folder")
            elif rel and not (root / rel).is_file():
                row_problems.append(f"{column} {rel!r} does not exist (looked in {root})")
        suite = row.get("suite") or kind or (REFVIE if ref else OPENVE)
        if suite == REFVIE and not ref:
            row_problems.append("a refvie case needs a ref_image")
        category = row.get("category") or guess_category(prompt, suite)
        if reason := check_category(suite, category):
            row_problems.append(reason)
        if row_problems:
            problems.append(f"{where}: {'; '.join(row_problems)}")
            continue
        cases.append(
            Case(
                case_id=row.get("case_id") or f"{path.stem}_{number:04d}",
                suite=suite,
                category=category,
                prompt=prompt,
                src_video=src,
                ref_image=ref,
                tgt_video=tgt,
                metadata={
                    "origin": "user_csv",
                    "csv": path.name,
                    "row": number,
                    "category_guessed": not row.get("category"),
                },
            )
        )
    if not raw_rows:
        problems.append(f"{path.name}: no data rows")
    if problems:
        more = f" (and {len(problems) - 10} more bad rows)" if len(problems) > 10 else ""
        raise SuiteError(f"{path}: {len(problems)} bad row(s): " + " | ".join(problems[:10]) + more)
    validate_cases(cases, root, str(path))
    return Suite(name or path.stem, root, cases)
