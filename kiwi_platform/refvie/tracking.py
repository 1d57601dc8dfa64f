"""Tracking changed regions through time: which per-frame components are the same moving object.

Why a module of its own: the `diff` backends find change frame by frame, and real edits move
(an added car drives through the clip, the camera pans). Deciding what is flicker and completing
a frame where an object was only partly found both need to know which components belong
together over time. A fixed neighbourhood (the former vote: change within 6 px in a neighbouring
frame) drops a small object that moves faster than that, and completing shapes over the whole frame mixes objects of
different sizes. Here components are linked frame to frame (overlap after a motion prediction, or
the nearest component of similar size within `max_jump` of the frame diagonal) into tracks, and
the clean-up steps run per track. Masks stay per frame (T,H,W); tracks only group them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kiwi_platform.refvie.difference import complete_shapes


@dataclass(frozen=True)
class Tracks:
    """Per-frame component labels and the track id of every (frame, component)."""

    labels: list[np.ndarray]  # (H,W) int32 per frame, 0 = background
    areas: list[np.ndarray]  # per frame: area of component c at index c (index 0 unused)
    track_of: list[np.ndarray]  # per frame: track id of component c at index c (-1 for index 0)
    count: int

    def length(self) -> np.ndarray:
        """Number of frames each track spans (frames where it has at least one component)."""
        frames = np.zeros(self.count, int)
        for ids in self.track_of:
            frames[np.unique(ids[1:])] += 1
        return frames

    def masks_of(self, track: int) -> np.ndarray:
        """(T,H,W) bool: the track's components in every frame."""
        return np.stack([np.isin(lab, np.flatnonzero(ids == track)) for lab, ids in zip(self.labels, self.track_of)])


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def link_tracks(masks: np.ndarray, radius: int = 3, max_jump: float = 0.15, max_ratio: float = 2.5) -> Tracks:
    """Group the 8-connected components of (T,H,W) bool `masks` into tracks.

    A component links to one in the next frame when (a) it overlaps it after being moved by the
    displacement its track showed last (then dilated by `radius` px), or (b) failing any overlap,
    the next frame's component of similar area (ratio below `max_ratio`) whose centroid is nearest,
    within `max_jump` x the frame diagonal. Links merge tracks (union-find), so an object that
    splits or merges stays one track. Deterministic: components are visited in label order.
    """
    t, h, w = masks.shape
    labels, areas, cents, offsets = [], [], [], []
    for m in masks:
        n, lab, stats, cen = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
        labels.append(lab)
        areas.append(stats[:, 4].astype(np.int64))
        cents.append(cen)
        offsets.append(sum(len(a) for a in areas[:-1]))
    parent = list(range(sum(len(a) for a in areas)))
    velocity: dict[int, np.ndarray] = {}  # global component id -> displacement that reached it
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    diag = float(np.hypot(h, w))
    for i in range(t - 1):
        nxt, nxt_areas = labels[i + 1], areas[i + 1]
        if len(nxt_areas) <= 1:
            continue
        for c in range(1, len(areas[i])):
            gid = offsets[i] + c
            v = velocity.get(gid, np.zeros(2))
            comp = (labels[i] == c).astype(np.uint8)
            moved = cv2.warpAffine(comp, np.float32([[1, 0, v[0]], [0, 1, v[1]]]), (w, h), flags=cv2.INTER_NEAREST)
            hits = np.unique(nxt[cv2.dilate(moved, kernel) > 0])
            hits = [int(k) for k in hits if k > 0]
            if not hits:
                dist = np.hypot(*(cents[i + 1][1:] - cents[i][c] - v).T)
                ratio = np.maximum(nxt_areas[1:], areas[i][c]) / np.maximum(np.minimum(nxt_areas[1:], areas[i][c]), 1)
                ok = np.flatnonzero((dist <= max_jump * diag) & (ratio <= max_ratio))
                hits = [1 + int(ok[np.argmin(dist[ok])])] if len(ok) else []
            for k in hits:
                parent[_find(parent, offsets[i + 1] + k)] = _find(parent, gid)
                velocity.setdefault(offsets[i + 1] + k, cents[i + 1][k] - cents[i][c])
    found = sorted({_find(parent, offsets[f] + c) for f in range(t) for c in range(1, len(areas[f]))})
    roots = {r: j for j, r in enumerate(found)}  # track ids numbered in order of first appearance
    track_of = []
    for f in range(t):
        ids = np.full(len(areas[f]), -1, int)
        for c in range(1, len(areas[f])):
            ids[c] = roots[_find(parent, offsets[f] + c)]
        track_of.append(ids)
    return Tracks(labels, areas, track_of, len(roots))


def prune_flicker(masks: np.ndarray, min_area: int, tracks: Tracks | None = None) -> np.ndarray:
    """Drop components of tracks that live for a single frame and stay below 4 x `min_area`.

    Codec flicker and noise make isolated blobs that do not persist; a real object, however fast it
    moves, is linked to its next view. Clips under 3 frames are returned as they are.
    """
    if len(masks) < 3:
        return masks
    tracks = tracks or link_tracks(masks)
    length = tracks.length()
    out = np.zeros_like(masks, dtype=bool)
    for f, (lab, ids, area) in enumerate(zip(tracks.labels, tracks.track_of, tracks.areas)):
        keep = np.zeros(len(ids), bool)
        for c in range(1, len(ids)):
            keep[c] = length[ids[c]] > 1 or area[c] >= 4 * min_area
        out[f] = keep[lab]
    return out


def complete_tracks(
    masks: np.ndarray, min_frames: int = 3, clips: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """`difference.complete_shapes` run per track (tracks spanning at least `min_frames` frames).

    Each object is completed from its own typical size and shape, so a small object beside a
    large one, or an old object removed while a new one of another size is added, no longer share
    one "typical area". A single track is exactly `complete_shapes` on the whole mask. `clips`
    (source, target) lets `complete_shapes` check that a filled pixel shows the object.
    """
    if len(masks) < 3 or not masks.any():
        return masks
    tracks = link_tracks(masks)
    if tracks.count <= 1:
        return complete_shapes(masks, clips=clips)
    out = masks.copy()
    for k in np.flatnonzero(tracks.length() >= min_frames):
        out |= complete_shapes(tracks.masks_of(int(k)), clips=clips)
    return out


def drop_faint_tracks(
    masks: np.ndarray, diff: np.ndarray, rel_area: float = 0.25, rel_change: float = 0.6
) -> np.ndarray:
    """Drop tracks that are both small (area below `rel_area` x the largest track's) and faint
    (median change below `rel_change` x the largest track's).

    Why: on a regenerated, lossy target an unedited object that moves fast is smeared by the
    re-encode differently in source and target, so its outline shows up as a moderate change of
    its own that follows it through the clip; the edit is the strong, large track. Clips under 3
    frames are returned as they are (too short to tell tracks apart).
    """
    if len(masks) < 3 or not masks.any():
        return masks
    tracks = link_tracks(masks)
    if tracks.count <= 1:
        return masks
    parts = [tracks.masks_of(k) for k in range(tracks.count)]
    area = np.array([p.sum() for p in parts], float)
    change = np.array([float(np.median(diff[p])) for p in parts])
    main = int(np.argmax(area))
    keep = (area >= rel_area * area[main]) | (change >= rel_change * change[main])
    if keep.all():
        return masks
    out = np.zeros_like(masks, dtype=bool)
    for k in np.flatnonzero(keep):
        out |= parts[k]
    return out
