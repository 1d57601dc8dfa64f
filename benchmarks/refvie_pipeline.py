"""Fidelity and speed of the default RefVIE backends, measured on `kiwi synth` pairs (known truth).

Generates a synthetic set (every edit type, videos and images), normalizes it exactly as
ingestion does (H.264 -> JPEG q95 clips), runs the same functions the assets call
(`kiwi_platform.refvie.pipeline`) and reports per edit type:

- mask IoU vs the ground-truth masks (mean over frames; target >= 0.8 for local edits),
- edit-type accuracy with the prompt (target >= 0.9) and from mask geometry alone (no prompt),
- reference similarity to the true reference (SSIM on luminance, after resizing to the true
  reference's size; "content" SSIM compares the object crops without their white margins, whose
  width differs by convention; embedding cosine),
- judge scores for matching vs mismatched reference/region pairs,
- near-duplicate precision/recall on injected copies of references (re-encoded, shifted,
  brightness-jittered, rescaled by 90-95%; target >= 0.95 both), distinct references must not be flagged,
- throughput in pairs/min (read clips + regions + reference + judge) on `--threads` OpenCV threads.

Then the hard set (issue 12, `refvie_hard.py`): the same seed's pairs with one `kiwi synth`
difficulty factor at a time (motion, camera, regenerate, distractors, resize_replace), all of them
(`hard`), and the easy set at the same size beside them, all at `--hard-size` (default 256x448x81,
the size issue 12 names for the hard set), each with local mask IoU per type,
background IoU, edit-type accuracy, box recall, the instruction/pixel type disagreement rate and
the quarantine reasons; plus the photometric-only bad input (share ending as `qc_no_edit`) and,
with `--throughput-n N`, hard-set throughput at `--throughput-size` (default 256x448x81, HxWxT).
The sets are built by `refvie_sets.py`.

    .venv/bin/python benchmarks/refvie_pipeline.py --n 60 [--frames 17 --height 128 --width 224]
        [--factor-n 12] [--hard-size 256x448x81] [--throughput-n 6]

Prints a table and writes benchmarks/results/refvie_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refvie_hard import hard_eval, hard_targets, print_hard, throughput_eval  # noqa: E402
from refvie_sets import load_gt, prepare  # noqa: E402

from kiwi_platform.lib.files import write_text_atomic  # noqa: E402
from kiwi_platform.lib.image_metrics import box_iou, clip_mask_iou, cosine, precision_recall, ssim  # noqa: E402
from kiwi_platform.media.clips import read_clip  # noqa: E402
from kiwi_platform.refvie import pipeline  # noqa: E402
from kiwi_platform.refvie.quality import (  # noqa: E402
    EmbeddingJudge,
    PerceptualHashEmbedder,
    find_near_duplicates,
    trim_canvas,
)
from kiwi_platform.refvie.references import region_cutout  # noqa: E402
from kiwi_platform.refvie.types import EDIT_TYPES, LOCAL_TYPES, SampleRejected  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "refvie_pipeline.json"


def variants(image: np.ndarray, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Near-duplicate copies a real crawl produces: re-encoded, shifted, brightness-jittered, rescaled."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 70])
    jpeg = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    dx, dy = int(rng.integers(2, 4)) * (1 if rng.random() < 0.5 else -1), int(rng.integers(1, 3))
    shift = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    gain = float(rng.choice([0.88, 0.92, 1.08, 1.12]))
    bright = np.clip(image.astype(np.float32) * gain + float(rng.uniform(-6, 6)), 0, 255).astype(np.uint8)
    scale = float(rng.uniform(0.9, 0.95))
    rescaled = cv2.resize(image, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
    return [("jpeg70", jpeg), ("shift", shift), ("brightness", bright), ("rescale", rescaled)]


def same_content_key(r: dict) -> str | None:
    """What makes two synth references show the same thing: the object words for local edits, the
    source file for a demo-footage background (crops of one shot), the file and filter for a style."""
    if r["edit_type"] in LOCAL_TYPES:
        return r.get("object")
    if r["edit_type"] == "background_change" and str(r.get("new_background", "")).startswith("demo:"):
        return r["new_background"]
    if r["edit_type"] == "global_style" and str(r.get("base", "")).startswith("demo:"):
        return f"{r['base']}|{r.get('style')}"
    return None


def duplicate_eval(
    refs: list[np.ndarray], names: list[str], objects: list[str | None], every: int, seed: int, thresholds: list[float]
) -> dict:
    """Inject copies of every `every`-th reference after all originals and search the whole list.

    A flag is right when a copy is matched to its original or a sibling copy. Two originals are
    "natural duplicates" when `kiwi synth` drew the same content (`same_content_key`: e.g. a
    "purple checkered diamond" added in one pair and removed in another, or two crops of one demo
    shot as new backgrounds): flagging those, or matching a copy to the kept twin of its
    original, is counted right in `precision` and wrong in `precision_strict`. Any other flag on
    an original is a false positive in both.
    """
    rng = np.random.default_rng(seed)
    images, family, kinds = list(refs), list(range(len(refs))), ["original"] * len(refs)
    for i in range(0, len(refs), every):
        for kind, img in variants(refs[i], rng):
            images.append(img)
            family.append(i)
            kinds.append(kind)
    emb = PerceptualHashEmbedder().embed(images)
    copies = {i for i, k in enumerate(kinds) if k != "original"}
    out = {"originals": len(refs), "copies": len(copies), "sweep": {}}
    for th in thresholds:
        found = find_near_duplicates(emb, th)
        flagged = {i for i, _, _ in found}
        same = lambda i, j: objects[family[i]] is not None and objects[family[i]] == objects[family[j]]  # noqa: E731
        exact = {i for i, j, _ in found if i in copies and family[i] == family[j]}
        # a copy of a natural duplicate that lands on the kept twin is found too (not in strict)
        correct = exact | {i for i, j, _ in found if i in copies and same(i, j)}
        natural = {i for i, j, _ in found if i not in copies and same(i, j)}
        precision = len(correct | natural) / len(flagged) if flagged else 1.0
        strict = len(exact) / len(flagged) if flagged else 1.0
        _, recall = precision_recall(correct, copies)
        false_flags = [
            (names[family[i]] + ("" if i < len(names) else f"/{kinds[i]}"), names[family[j]], round(s, 3))
            for i, j, s in found
            if i not in correct | natural
        ]
        missed = sorted({kinds[i] for i in copies - correct})
        out["sweep"][f"{th:.2f}"] = {
            "precision": round(precision, 4),
            "precision_strict": round(strict, 4),
            "recall": round(recall, 4),
            "natural_duplicates_flagged": len(natural),
            "false_flags": false_flags[:10],
            "missed_kinds": missed,
        }
    sims = emb @ emb.T
    n = len(refs)
    off = sims[:n, :n][~np.eye(n, dtype=bool)]
    out["max_similarity_between_originals"] = round(float(off.max()), 4) if off.size else None
    out["min_similarity_copy_to_original"] = (
        round(float(min(sims[i, family[i]] for i in copies)), 4) if copies else None
    )
    return out


def judge_eval(cases: list[dict]) -> dict:
    """Judge scores of each reference vs its own region, and vs another pair's region of the same type."""
    judge = EmbeddingJudge()
    match, mismatch = [], []
    by_type = defaultdict(list)
    for c in cases:
        by_type[c["edit_type"]].append(c)
    for c in cases:
        match.append(judge.score(c["reference"], c["cutout"], c["prompt"], c["edit_type"]))
        others = [o for o in by_type[c["edit_type"]] if o is not c]
        if others:
            o = others[(cases.index(c) * 7) % len(others)]
            mismatch.append(judge.score(c["reference"], o["cutout"], c["prompt"], c["edit_type"]))
    m, x = np.array(match), np.array(mismatch)
    auc = (
        float((m[:, None] > x[None, :]).mean() + 0.5 * (m[:, None] == x[None, :]).mean()) if len(m) and len(x) else None
    )
    return {
        "matched_mean": round(float(m.mean()), 4),
        "mismatched_mean": round(float(x.mean()), 4),
        "auc": round(auc, 4) if auc is not None else None,
        "matched_below_threshold": int((m < pipeline.DEFAULT_JUDGE_THRESHOLD).sum()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads (the CPU budget measured)")
    parser.add_argument("--dup-every", type=int, default=3, help="inject copies of every k-th reference")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the synthetic set here")
    parser.add_argument("--factor-n", type=int, default=12, help="pairs per difficulty-factor set (0: skip)")
    parser.add_argument(
        "--hard-size", default="256x448x81", help="HxWxT of the easy/factor/hard sets (the issue's hard-set size)"
    )
    parser.add_argument("--throughput-n", type=int, default=0, help="hard pairs timed at --throughput-size")
    parser.add_argument("--throughput-size", default="256x448x81", help="HxWxT of the throughput run")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    tmp = tempfile.TemporaryDirectory(prefix="refvie-bench-") if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    t0 = time.perf_counter()
    records = prepare(work, args.n, args.seed, args.frames, args.height, args.width)
    prep_s = time.perf_counter() - t0

    backends = pipeline.default_backends()
    per_type: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    rejected, cases, work_s = [], [], 0.0
    for r in records:
        gt_masks, gt_ref = load_gt(work, r)
        stats = per_type[r["edit_type"]]
        started = time.perf_counter()
        source, target = read_clip(r["src_clip"]), read_clip(r["tgt_clip"])
        try:
            region = pipeline.analyse_pair(
                source, target, r["prompt"], grounder=backends["grounder"], segmenter=backends["segmenter"]
            )
            reference = pipeline.synthesize_reference(target, source, region, inpainter=backends["inpainter"])
            score = pipeline.judge_reference(reference, target, source, region, r["prompt"], threshold=0.0)
        except SampleRejected as exc:
            work_s += time.perf_counter() - started
            rejected.append(
                {"pair": r["pair"], "edit_type": r["edit_type"], "reason": exc.reason, "message": exc.message}
            )
            for key in ("mask_iou", "type_correct", "type_correct_no_prompt"):
                stats[key].append(0.0)
            continue
        work_s += time.perf_counter() - started
        blind = pipeline.analyse_pair(
            source, target, "", grounder=backends["grounder"], segmenter=backends["segmenter"]
        )
        stats["mask_iou"].append(clip_mask_iou(region.masks, gt_masks))
        stats["box_iou_frame0"].append(box_iou(region.frame_boxes[0], r["box"]))
        stats["type_correct"].append(float(region.edit_type == r["edit_type"]))
        stats["type_correct_no_prompt"].append(float(blind.edit_type == r["edit_type"]))
        stats["ref_ssim"].append(ssim(gt_ref, reference))
        stats["ref_ssim_content"].append(ssim(trim_canvas(gt_ref, pad=0.0)[0], trim_canvas(reference, pad=0.0)[0]))
        emb = PerceptualHashEmbedder().embed([gt_ref, reference])
        stats["ref_embedding_cosine"].append(cosine(emb[0], emb[1]))
        stats["judge_score"].append(score)
        obj = same_content_key(r)
        cases.append(
            {
                "pair": r["pair"],
                "edit_type": r["edit_type"],
                "prompt": r["prompt"],
                "reference": reference,
                "object": obj,
                "cutout": region_cutout(target, region, source=source),
            }
        )

    table = {}
    for edit_type in EDIT_TYPES:
        stats = per_type.get(edit_type)
        if not stats:
            continue
        table[edit_type] = {k: round(float(np.mean(v)), 4) for k, v in stats.items()}
        table[edit_type]["pairs"] = len(stats["mask_iou"])
        table[edit_type]["mask_iou_min"] = round(float(np.min(stats["mask_iou"])), 4)
    local_iou = [v for t in LOCAL_TYPES for v in per_type[t]["mask_iou"]]
    all_correct = [v for s in per_type.values() for v in s["type_correct"]]
    blind_correct = [v for s in per_type.values() for v in s["type_correct_no_prompt"]]
    refs = [c["reference"] for c in cases]
    dups = duplicate_eval(
        refs,
        [c["pair"] for c in cases],
        [c["object"] for c in cases],
        args.dup_every,
        args.seed,
        [0.85, 0.88, 0.90, 0.92, 0.93, 0.94, 0.95],
    )
    chosen = dups["sweep"][f"{pipeline.DEFAULT_DUPLICATE_THRESHOLD:.2f}"]
    result = {
        "config": {
            "n": args.n,
            "frames": args.frames,
            "height": args.height,
            "width": args.width,
            "seed": args.seed,
            "threads": args.threads,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "backends": {k: getattr(v, "name", type(v).__name__) for k, v in backends.items()},
        },
        "per_type": table,
        "summary": {
            "local_mask_iou_mean": round(float(np.mean(local_iou)), 4),
            "type_accuracy": round(float(np.mean(all_correct)), 4),
            "type_accuracy_no_prompt": round(float(np.mean(blind_correct)), 4),
            "duplicate_threshold": pipeline.DEFAULT_DUPLICATE_THRESHOLD,
            "duplicate_precision": chosen["precision"],
            "duplicate_recall": chosen["recall"],
            "duplicate_precision_strict": chosen["precision_strict"],
            "pairs_per_min": round(len(records) / work_s * 60.0, 1),
            "seconds_per_pair": round(work_s / len(records), 4),
            "prepare_seconds": round(prep_s, 2),
            "rejected": len(rejected),
        },
        "targets": {
            "local_mask_iou_mean>=0.8": bool(np.mean(local_iou) >= 0.8),
            "type_accuracy>=0.9": bool(np.mean(all_correct) >= 0.9),
            "duplicate_precision>=0.95": chosen["precision"] >= 0.95,
            "duplicate_recall>=0.95": chosen["recall"] >= 0.95,
        },
        "duplicates": dups,
        "judge": judge_eval(cases),
        "rejected": rejected,
    }
    if args.factor_n > 0:
        print("hard set, per difficulty factor:", flush=True)
        result["hard_set"] = hard_eval(args, backends, work)
        result["hard_size"] = args.hard_size
        result["hard_targets"] = hard_targets(result["hard_set"])
    if args.throughput_n > 0:
        result["hard_throughput"] = throughput_eval(args, backends, work)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    if tmp:
        tmp.cleanup()
    return 0


def print_table(result: dict) -> None:
    cols = [
        "pairs",
        "mask_iou",
        "mask_iou_min",
        "box_iou_frame0",
        "type_correct",
        "type_correct_no_prompt",
        "ref_ssim",
        "ref_ssim_content",
        "ref_embedding_cosine",
        "judge_score",
    ]
    heads = ["pairs", "IoU", "IoU min", "box0", "type", "type(geo)", "ref SSIM", "SSIM obj", "ref cos", "judge"]
    print(f"{'edit type':18s} " + " ".join(f"{h:>9s}" for h in heads))
    for edit_type, row in result["per_type"].items():
        print(
            f"{edit_type:18s} "
            + " ".join(f"{row.get(c, float('nan')):>9.3f}" if c != "pairs" else f"{row[c]:>9d}" for c in cols)
        )
    s, d, j = result["summary"], result["duplicates"], result["judge"]
    print(
        f"local mask IoU {s['local_mask_iou_mean']:.3f} | type accuracy {s['type_accuracy']:.3f} "
        f"(geometry only {s['type_accuracy_no_prompt']:.3f}) | rejected {s['rejected']}"
    )
    print(
        f"near-duplicates @ {s['duplicate_threshold']}: precision {s['duplicate_precision']:.3f} "
        f"(strict {s['duplicate_precision_strict']:.3f}) recall {s['duplicate_recall']:.3f} "
        f"({d['copies']} copies of {d['originals']} references)"
    )
    print(f"judge: matched {j['matched_mean']:.3f} vs mismatched {j['mismatched_mean']:.3f}, AUC {j['auc']}")
    print(
        f"throughput {s['pairs_per_min']:.1f} pairs/min ({s['seconds_per_pair']:.3f} s/pair, "
        f"{result['config']['threads']} OpenCV threads)"
    )
    print("targets:", ", ".join(f"{k}: {'ok' if v else 'MISSED'}" for k, v in result["targets"].items()))
    print_hard(result)


if __name__ == "__main__":
    raise SystemExit(main())
