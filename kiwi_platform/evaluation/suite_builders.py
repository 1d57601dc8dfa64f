"""Build the standard suites: OpenVE-style and RefVIE-style from held-out synthetic pairs, and the demo clips.

Synthetic pairs (`kiwi_platform.synth`) carry what real benchmarks lack: the true target, the
per-frame edit masks and the true reference, so offline metrics can be exact. Use a seed that
training never saw (the builders default to one far from the training generator's 0) so the suite
stays held out. The demo suite is real footage with the upstream prompts and reference, but no
ground truth: only the judge and mask-free offline metrics apply there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from kiwi_platform.evaluation.categories import OPENVE, REFVIE, SYNTH_TO_OPENVE, SYNTH_TO_REFVIE
from kiwi_platform.evaluation.suite_csv import read_csv_rows
from kiwi_platform.evaluation.suites import Case, Suite, SuiteError, save_suite

#: Seed for held-out synthetic benchmark pairs (training data is generated with small seeds).
HELDOUT_SEED = 90_210


def cases_from_synth(synth_dir: str | Path, kind: str) -> list[Case]:
    """Cases (absolute paths) from a `kiwi_platform.synth.generate` folder, mapped to `kind`'s categories.

    RefVIE keeps only edits whose true reference is what gets inserted (add/replace -> subject,
    background change -> background) and always attaches that reference.
    """
    from kiwi_platform.synth import load_ground_truth

    root = Path(synth_dir).resolve()
    mapping = SYNTH_TO_OPENVE if kind == OPENVE else SYNTH_TO_REFVIE
    cases = []
    for rec in load_ground_truth(root):
        category = mapping.get(rec["edit_type"])
        if category is None:
            continue
        cases.append(
            Case(
                case_id=f"{kind}_{category}_{rec['pair']}",
                suite=kind,
                category=category,
                prompt=rec["prompt"],
                src_video=str(root / rec["src"]),
                tgt_video=str(root / rec["tgt"]),
                mask_dir=str(root / rec["mask_dir"]),
                ref_image=str(root / rec["reference"]) if kind == REFVIE else "",
                metadata={
                    "origin": "synthetic",
                    "edit_type": rec["edit_type"],
                    "media": rec["media"],
                    "reference_kind": rec["reference_kind"],
                    "synth_seed": rec["seed"],
                    "pair": rec["pair"],
                },
            )
        )
    return cases


def build_synthetic_suite(
    kind: str,
    out_dir: str | Path,
    *,
    n: int = 30,
    seed: int = HELDOUT_SEED,
    frames: int = 17,
    height: int = 256,
    width: int = 448,
    image_share: float = 0.0,
    synth_dir: str | Path | None = None,
    demo_dir: str | Path | None = None,
    name: str | None = None,
) -> Suite:
    """Generate `n` held-out synthetic pairs (or reuse `synth_dir`) and save them as a `kind` suite.

    For RefVIE only add/replace/background pairs qualify (about half of `n`, edit types round-robin).
    """
    if kind not in (OPENVE, REFVIE):
        raise SuiteError(f"unknown suite kind {kind!r} (expected openve or refvie)")
    with tempfile.TemporaryDirectory(prefix="kiwi-eval-synth-") as tmp:
        if synth_dir is None:
            from kiwi_platform.synth import generate

            synth_dir = Path(tmp)
            generate(
                synth_dir,
                n,
                seed,
                frames=frames,
                height=height,
                width=width,
                image_share=image_share,
                with_ref=kind == REFVIE,
                demo_dir=Path(demo_dir) if demo_dir else None,
            )
        cases = cases_from_synth(synth_dir, kind)
        return save_suite(Suite(name or f"{kind}-synthetic", Path("/"), cases), out_dir)


def _demo_rows(demo_dir: Path, manifest: str) -> list[dict[str, str]]:
    path = demo_dir / manifest
    if not path.is_file():
        return []
    rows, seen = [], set()
    for row in read_csv_rows(path)[1]:
        key = (row.get("prompt", ""), row.get("src_video", ""), row.get("ref_image", ""))
        if key not in seen and key[0] and key[1] and (demo_dir / key[1]).is_file():
            seen.add(key)
            rows.append(row)
    return rows


def demo_cases(demo_dir: str | Path) -> list[Case]:
    """Cases from the real demo clips and prompts (upstream targets were never shipped: no ground truth).

    - video style prompt (forest clip)        -> openve / global_style
    - image lighting prompt (source jpg)      -> openve / global_style
    - towel -> stones prompt (bathtub clip)   -> openve / local_change (instruction only)
                                              -> refvie / subject (with the demo reference image)
    """
    root = Path(demo_dir).resolve()
    cases: list[Case] = []
    meta = {"origin": "demo"}
    for i, row in enumerate(_demo_rows(root, "video_demo_training_set.csv")):
        cases.append(
            Case(
                f"demo_openve_video_style_{i}",
                OPENVE,
                "global_style",
                row["prompt"],
                str(root / row["src_video"]),
                metadata=meta,
            )
        )
    for i, row in enumerate(_demo_rows(root, "image_demo_training_set.csv")):
        cases.append(
            Case(
                f"demo_openve_image_style_{i}",
                OPENVE,
                "global_style",
                row["prompt"],
                str(root / row["src_video"]),
                metadata={**meta, "media": "image"},
            )
        )
    for i, row in enumerate(_demo_rows(root, "video_ref_demo_training_set.csv")):
        cases.append(
            Case(
                f"demo_openve_replace_{i}",
                OPENVE,
                "local_change",
                row["prompt"],
                str(root / row["src_video"]),
                metadata=meta,
            )
        )
        if row.get("ref_image") and (root / row["ref_image"]).is_file():
            cases.append(
                Case(
                    f"demo_refvie_subject_{i}",
                    REFVIE,
                    "subject",
                    row["prompt"],
                    str(root / row["src_video"]),
                    ref_image=str(root / row["ref_image"]),
                    metadata=meta,
                )
            )
    if not cases:
        raise SuiteError(f"{root}: no demo manifest rows with an existing source file")
    return cases


def build_demo_suite(demo_dir: str | Path, out_dir: str | Path, *, name: str = "demo") -> Suite:
    """Save the demo cases (media copied) as a suite folder."""
    return save_suite(Suite(name, Path("/"), demo_cases(demo_dir)), out_dir)


def build_standard_suites(
    out_dir: str | Path,
    *,
    n: int = 30,
    seed: int = HELDOUT_SEED,
    frames: int = 17,
    height: int = 256,
    width: int = 448,
    demo_dir: str | Path | None = None,
) -> dict[str, Suite]:
    """The three standard suites under `out_dir`: `openve/`, `refvie/` (held-out synthetic) and `demo/`."""
    from kiwi_platform.synth.clips import default_demo_dir

    out = Path(out_dir)
    demo = Path(demo_dir) if demo_dir else default_demo_dir()
    size = {"frames": frames, "height": height, "width": width, "demo_dir": demo}
    return {
        OPENVE: build_synthetic_suite(OPENVE, out / OPENVE, n=n, seed=seed, **size),
        REFVIE: build_synthetic_suite(REFVIE, out / REFVIE, n=n, seed=seed + 1, **size),
        "demo": build_demo_suite(demo, out / "demo"),
    }
