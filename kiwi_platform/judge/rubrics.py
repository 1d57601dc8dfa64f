"""Judge rubrics as data: the prompt, the scored dimensions and the cap rule, with a stable hash.

Why data, not code: the rubric text is part of a score's identity. `rubric_hash` (sha256 of the
canonical text) goes into the cache key and into results, so editing a prompt invalidates cached
scores instead of silently mixing two rubrics in one table.

The prompts paraphrase the Kiwi-Edit paper's judging protocol (docs/contract.md §5) in our own words.
Upstream states the RefVIE cap ("dimensions 2 and 3 cannot exceed dimension 1") only in the prompt;
we keep it there and also enforce it in code after parsing (`parse.apply_cap`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

ANSWER_FORMAT = (
    "Answer with one JSON object and nothing else, in exactly this shape:\n"
    '{{"scores": {{{fields}}}, "reason": "<one or two sentences>"}}\n'
    "Every score is an integer from 1 (worst) to 5 (best)."
)


@dataclass(frozen=True)
class Rubric:
    """One judging protocol: who the judge is, what it sees, which dimensions it scores 1-5.

    `cap_by`: when set, every dimension in `capped` is clamped to at most the `cap_by` score.
    `dimension_help` describes each dimension to the model, in the order they are scored.
    """

    name: str
    system: str
    task: str
    dimension_help: tuple[tuple[str, str], ...]
    cap_by: str | None = None
    capped: tuple[str, ...] = field(default=())
    version: int = 1

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.dimension_help)

    def user_prompt(self, text: str) -> str:
        """The rubric's instructions followed by the case-specific text (instruction, labels, notes)."""
        lines = [self.task.strip(), "", "Score these dimensions:"]
        lines += [f"- {name}: {help_}" for name, help_ in self.dimension_help]
        if self.cap_by:
            lines.append(f"Rule: {', '.join(self.capped)} can never be higher than {self.cap_by}.")
        fields = ", ".join(f'"{name}": <1-5>' for name in self.dimensions)
        lines += ["", ANSWER_FORMAT.format(fields=fields), "", "Case:", text.strip()]
        return "\n".join(lines)

    @property
    def canonical_text(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "version": self.version,
                "system": self.system,
                "task": self.task,
                "dimensions": [list(d) for d in self.dimension_help],
                "cap_by": self.cap_by,
                "capped": list(self.capped),
                "format": ANSWER_FORMAT,
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    @property
    def rubric_hash(self) -> str:
        return hashlib.sha256(self.canonical_text.encode("utf-8")).hexdigest()

    def __post_init__(self) -> None:
        dims = self.dimensions
        if len(set(dims)) != len(dims) or not dims:
            raise ValueError(f"rubric {self.name}: dimensions must be unique and non-empty")
        if self.cap_by is not None and (self.cap_by not in dims or not set(self.capped) <= set(dims)):
            raise ValueError(f"rubric {self.name}: cap dimensions must be among {dims}")


_SYSTEM = (
    "You are a strict, consistent evaluator of image and video edits. You look carefully at every "
    "frame you are given, judge only what is visible, and never reward an edit for effort. "
    "You always answer in the exact JSON format requested."
)

REFERENCE_MATCH = Rubric(
    name="reference_match",
    system=_SYSTEM,
    task=(
        "You see an edit instruction, frames of the edited target video and a reference image "
        "produced for that edit. For an object edit the reference should show the added or "
        "replacing object alone on a plain background; for a background edit it should show the "
        "new background with the foreground removed. Decide whether the reference shows the same "
        "object or background that appears in the edited target, with the same identity, colours "
        "and main details."
    ),
    dimension_help=(
        (
            "reference_match",
            "5 = clearly the same object/background as in the target; 3 = the right kind of thing but "
            "with visible differences (colour, shape, parts); 1 = a different thing, blank, or mostly "
            "leftover context from the scene.",
        ),
    ),
)

OPENVE = Rubric(
    name="openve",
    system=_SYSTEM,
    task=(
        "You see an edit instruction, frames of the source video and the same frames of the edited "
        "video. Judge how well the edited video carries out the instruction."
    ),
    dimension_help=(
        (
            "instruction_compliance",
            "does the edited video do what the instruction asks, fully and only that? 5 = exactly, "
            "1 = not at all or something else was edited.",
        ),
        (
            "detail_preservation",
            "outside the requested change, are the content, identity and layout of the source kept, and "
            "is the result free of artefacts, blur and distortions? 5 = untouched and clean, 1 = "
            "heavily damaged.",
        ),
        (
            "temporal_consistency",
            "is the edit stable across frames: no flicker, no popping, the edited content follows the "
            "motion of the scene? 5 = perfectly stable, 1 = unusable.",
        ),
    ),
)

REFVIE = Rubric(
    name="refvie",
    system=_SYSTEM,
    task=(
        "You see an edit instruction, a reference image, frames of the source video and the same "
        "frames of the edited video. The edit must insert or swap in the subject or background shown "
        "in the reference. Judge how faithfully and how well it was done."
    ),
    dimension_help=(
        (
            "reference_fidelity",
            "does the edited video show the reference's subject (identity, shape, colours, details) or "
            "background (layout, style) and not a generic look-alike? 5 = unmistakably the reference, "
            "1 = unrelated or missing.",
        ),
        (
            "matting_quality",
            "are the boundaries of the inserted content clean and is it stable over time: no halos, "
            "cut-outs, flicker or drifting edges? 5 = seamless, 1 = broken.",
        ),
        (
            "physical_harmony",
            "does the inserted content belong in the scene: lighting, shadows, scale, perspective, "
            "occlusion and motion consistent with the video? 5 = fully natural, 1 = pasted on.",
        ),
    ),
    cap_by="reference_fidelity",
    capped=("matting_quality", "physical_harmony"),
)

RUBRICS: dict[str, Rubric] = {r.name: r for r in (REFERENCE_MATCH, OPENVE, REFVIE)}


def get_rubric(name: str) -> Rubric:
    try:
        return RUBRICS[name]
    except KeyError:
        raise KeyError(f"unknown rubric {name!r}; known: {', '.join(sorted(RUBRICS))}") from None
