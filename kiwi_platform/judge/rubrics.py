"""Judge rubrics as data: the prompt, the scored dimensions and the cap rule, with a stable hash.

Why data, not code: the rubric text is part of a score's identity. `rubric_hash` (sha256 of the
canonical text) goes into the cache key and into results, so editing a prompt invalidates cached
scores instead of silently mixing two rubrics in one table.

Two answer formats: `json` (our own rubrics, e.g. RefVIE reference QC: a JSON object with scores)
and `lines` (the benchmark rubrics, verbatim from upstream's evaluation scripts: the whole rubric is
the system prompt with the instruction filled in, and the answer is read line by line exactly as
upstream's `check_format` reads it; see `upstream_rubrics` and `parse_lines`). Upstream states the
cap ("the second and third scores should not be higher than the first") only in the prompt; we
also enforce it in code after parsing (`parse.apply_cap`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

ANSWER_FORMAT = (
    "Answer with one JSON object and nothing else, in exactly this shape:\n"
    '{{"scores": {{{fields}}}, "reason": "<one or two sentences>"}}\n'
    "Every score is an integer from 1 (worst) to 5 (best)."
)


@dataclass(frozen=True)
class Rubric:
    """One judging protocol: who the judge is, what it sees, which dimensions it scores 1-5.

    `cap_by`: when set, every dimension in `capped` is clamped to at most the `cap_by` score.
    `dimension_help` describes each dimension to the model, in the order they are scored; for the
    `lines` format the help is the exact line label the answer must start with ("Instruction Compliance").
    `system_template`: when set, the system prompt is this text with `{<placeholder>}` = the instruction.
    """

    name: str
    system: str
    task: str
    dimension_help: tuple[tuple[str, str], ...]
    cap_by: str | None = None
    capped: tuple[str, ...] = field(default=())
    version: int = 1
    answer_format: Literal["json", "lines"] = "json"
    system_template: str = ""
    placeholder: str = "edit_prompt"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(help_ for _, help_ in self.dimension_help)

    def system_prompt(self, instruction: str = "") -> str:
        """The system message: the template with the instruction filled in (upstream's `.format`), else `system`."""
        if self.system_template:
            return self.system_template.format(**{self.placeholder: instruction})
        return self.system

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.dimension_help)

    def user_prompt(self, text: str) -> str:
        """The rubric's instructions followed by the case-specific text (instruction, labels, notes).

        A `lines` rubric carries everything in its system prompt, as upstream does: the user text is
        only what the caller passes (labels for the media), possibly nothing.
        """
        if self.answer_format == "lines":
            return text.strip()
        lines = [self.task.strip(), "", "Score these dimensions:"]
        lines += [f"- {name}: {help_}" for name, help_ in self.dimension_help]
        if self.cap_by:
            lines.append(f"Rule: {', '.join(self.capped)} can never be higher than {self.cap_by}.")
        fields = ", ".join(f'"{name}": <1-5>' for name in self.dimensions)
        lines += ["", ANSWER_FORMAT.format(fields=fields), "", "Case:", text.strip()]
        return "\n".join(lines)

    @property
    def canonical_text(self) -> str:
        record = {
            "name": self.name,
            "version": self.version,
            "system": self.system,
            "task": self.task,
            "dimensions": [list(d) for d in self.dimension_help],
            "cap_by": self.cap_by,
            "capped": list(self.capped),
            "format": ANSWER_FORMAT,
        }
        if self.answer_format != "json":  # json rubrics keep the hash they always had (cached answers stay valid)
            record.update(format=self.answer_format, system_template=self.system_template, placeholder=self.placeholder)
        return json.dumps(record, sort_keys=True, ensure_ascii=False)

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

RUBRICS: dict[str, Rubric] = {REFERENCE_MATCH.name: REFERENCE_MATCH}  # the benchmark rubrics join in `upstream_rubrics`


def get_rubric(name: str) -> Rubric:
    try:
        return RUBRICS[name]
    except KeyError:
        raise KeyError(f"unknown rubric {name!r}; known: {', '.join(sorted(RUBRICS))}") from None
