"""The hard-set half of the RefVIE benchmark (issue 12): each `kiwi synth` difficulty factor alone,
all of them (`hard`), the easy set beside them, the photometric-only bad input and hard-set throughput.

Why a module of its own: `refvie_pipeline.py` measures the easy set in depth (references,
near-duplicates, judge); this one measures grounding under what real edited videos do, compactly
per set, so a regression on either set shows. Scored per set:

- mask IoU per edit type and the local-edit mean, from stage 2 (`analyse_pair`) alone: a pair
  whose region is found but whose reference is later rejected (e.g. `qc_reference_too_small` for a
  small object) still has its masks and type scored; a pair stage 2 rejects scores IoU 0 and a
  wrong type;
- edit-type accuracy, box recall (share of local-edit frames whose found box overlaps the true
  object box with IoU >= 0.5), the instruction/pixel type disagreement rate;
- outcomes: `accepted` or the quarantine reason of stage 2, 3 (reference) or 4 (judge, threshold 0);
- pairs/min over the whole per-pair work (regions + reference + judge), on the OpenCV threads set
  by the caller.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from refvie_sets import load_gt, prepare

from kiwi_platform.lib.image_metrics import box_iou, clip_mask_iou
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie import pipeline
from kiwi_platform.refvie.assembly import type_evidence
from kiwi_platform.refvie.types import LOCAL_TYPES, SampleRejected
from kiwi_platform.synth.difficulty import Difficulty

FACTORS = ("motion", "camera", "regenerate", "distractors", "resize_replace")
#: A found box "recalls" the true object box at this IoU.
BOX_RECALL_IOU = 0.5


def _gt_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    return (int(xs.min()), int(ys.min()), int(xs.max() + 1), int(ys.max() + 1)) if len(ys) else None


def _later_stages(source: np.ndarray, target: np.ndarray, region, prompt: str, backends: dict) -> str:
    """`accepted`, or the reason stage 3 (reference) or stage 4 (judge) quarantined the pair."""
    try:
        reference = pipeline.synthesize_reference(target, source, region, inpainter=backends["inpainter"])
        pipeline.judge_reference(reference, target, source, region, prompt, threshold=0.0)
    except SampleRejected as exc:
        return exc.reason
    return "accepted"


def score_set(work: Path, records: list[dict], backends: dict) -> dict:
    """Compact fidelity of one (hard or easy) set; see the module docstring."""
    iou: dict[str, list[float]] = defaultdict(list)
    correct, recall, disagree, reasons, seconds = [], [], [], defaultdict(int), 0.0
    video_seconds = 0.0
    for r in records:
        before = seconds
        gt_masks, _ = load_gt(work, r)
        source, target = read_clip(r["src_clip"]), read_clip(r["tgt_clip"])
        started = time.perf_counter()
        try:
            region = pipeline.analyse_pair(
                source, target, r["prompt"], grounder=backends["grounder"], segmenter=backends["segmenter"]
            )
        except SampleRejected as exc:
            seconds += time.perf_counter() - started
            video_seconds += (seconds - before) if r["frames"] > 1 else 0.0
            reasons[exc.reason] += 1
            if r["edit_type"] != "no_edit":
                iou[r["edit_type"]].append(0.0)
                correct.append(0.0)
                if r["edit_type"] in LOCAL_TYPES:
                    recall.extend([0.0] * int(gt_masks.reshape(len(gt_masks), -1).any(axis=1).sum()))
            continue
        reasons[_later_stages(source, target, region, r["prompt"], backends)] += 1
        seconds += time.perf_counter() - started
        video_seconds += (seconds - before) if r["frames"] > 1 else 0.0
        if r["edit_type"] == "no_edit":
            continue
        iou[r["edit_type"]].append(clip_mask_iou(region.masks, gt_masks))
        correct.append(float(region.edit_type == r["edit_type"]))
        disagree.append(float(type_evidence({"prompt": r["prompt"]}, region, source, target).disagreement))
        if r["edit_type"] in LOCAL_TYPES:
            for m, box in zip(gt_masks, region.frame_boxes):
                if m.any():
                    recall.append(float(box is not None and box_iou(box, _gt_box(m)) >= BOX_RECALL_IOU))
    local = [v for t in LOCAL_TYPES for v in iou.get(t, [])]
    mean = lambda v: round(float(np.mean(v)), 4) if v else None  # noqa: E731
    return {
        "pairs": len(records),
        "local_mask_iou_mean": mean(local),
        "mask_iou_per_type": {t: mean(v) for t, v in sorted(iou.items())},
        "background_iou": mean(iou.get("background_change", [])),
        "type_accuracy": mean(correct),
        "box_recall": mean(recall),
        "type_disagreement_rate": mean(disagree),
        "outcomes": dict(sorted(reasons.items())),
        "pairs_per_min": round(len(records) / max(seconds, 1e-9) * 60.0, 1),
        "video_pairs_per_min": round(sum(r["frames"] > 1 for r in records) / max(video_seconds, 1e-9) * 60.0, 1),
    }


def hard_eval(args: argparse.Namespace, backends: dict, work: Path) -> dict:
    """The easy set, each difficulty factor alone, all of them (`hard`) and the photometric-only bad
    input, `--factor-n` pairs each at `--hard-size` (HxWxT), same seed (same scenes and objects)."""
    height, width, frames = (int(v) for v in args.hard_size.split("x"))
    sets = {"easy": None, **{f: Difficulty(**{f: True}) for f in FACTORS}, "hard": Difficulty.preset("hard")}
    sets["photometric_only"] = Difficulty(photometric_only=True)
    out = {}
    for name, difficulty in sets.items():
        folder = work / f"hard-{name}"
        records = prepare(folder, args.factor_n, args.seed, frames, height, width, difficulty)
        out[name] = score_set(folder, records, backends)
        if name == "photometric_only":
            out[name]["qc_no_edit_share"] = round(out[name]["outcomes"].get("qc_no_edit", 0) / len(records), 4)
        print(f"  {name}: {json.dumps(out[name])}", flush=True)
    return out


def hard_targets(hard_set: dict) -> dict[str, bool]:
    """Issue 12's targets on the hard preset: every local type's mask IoU, background IoU, type
    accuracy, and the photometric-only pairs all ending as qc_no_edit."""
    hard, photo = hard_set["hard"], hard_set["photometric_only"]
    per_type = [hard["mask_iou_per_type"].get(t) for t in LOCAL_TYPES]
    return {
        "hard_per_type_iou>=0.85": all(v is not None and v >= 0.85 for v in per_type),
        "hard_background_iou>=0.9": (hard["background_iou"] or 0.0) >= 0.9,
        "hard_type_accuracy>=0.95": (hard["type_accuracy"] or 0.0) >= 0.95,
        "photometric_only_all_qc_no_edit": photo["qc_no_edit_share"] == 1.0,
    }


def throughput_eval(args: argparse.Namespace, backends: dict, work: Path) -> dict:
    """Hard-set pairs/min at `--throughput-size` (HxWxT), `--throughput-n` pairs (videos and images)."""
    height, width, frames = (int(v) for v in args.throughput_size.split("x"))
    folder = work / "throughput"
    records = prepare(folder, args.throughput_n, args.seed, frames, height, width, Difficulty.preset("hard"))
    result = score_set(folder, records, backends)
    videos = sum(1 for r in records if r["frames"] > 1)
    return {"size": args.throughput_size, "videos": videos, "images": len(records) - videos, **result}


def print_hard(result: dict) -> None:
    """The hard-set table, the bad-input line and the throughput line (when measured)."""
    if "hard_set" in result:
        print(f"difficulty sets at {result['hard_size']} (HxWxT):")
        heads = [
            "local IoU",
            "add",
            "replace",
            "remove",
            "recolor",
            "bg IoU",
            "type acc",
            "box rec",
            "disagree",
            "pairs/min",
        ]
        print(f"{'set':18s} " + " ".join(f"{h:>9s}" for h in heads))
        fmt = lambda v: f"{v:>9.3f}" if isinstance(v, float) else f"{'-':>9s}"  # noqa: E731
        for name, row in result["hard_set"].items():
            per = row["mask_iou_per_type"]
            values = [row["local_mask_iou_mean"], *(per.get(t) for t in LOCAL_TYPES)]
            values += [row["background_iou"], row["type_accuracy"], row["box_recall"], row["type_disagreement_rate"]]
            print(f"{name:18s} " + " ".join(fmt(v) for v in values) + f" {row['pairs_per_min']:>9.1f}")
        photo = result["hard_set"].get("photometric_only")
        if photo:
            print(
                f"photometric-only bad input ending as qc_no_edit: {photo['qc_no_edit_share']:.2f} ({photo['outcomes']})"
            )
        print(
            "hard-set targets: "
            + ", ".join(f"{k}: {'ok' if v else 'MISSED'}" for k, v in result["hard_targets"].items())
        )
    if "hard_throughput" in result:
        t = result["hard_throughput"]
        print(
            f"hard-set throughput at {t['size']} (HxWxT): {t['pairs_per_min']:.1f} pairs/min, videos alone "
            f"{t['video_pairs_per_min']:.1f} ({t['pairs']} pairs: {t['videos']} videos, {t['images']} images; "
            f"local IoU {t['local_mask_iou_mean']})"
        )
