"""What the instruction asks for: a rule-based parse of the prompt into an edit type and its words.

Why a module of its own: the prompt is one of two independent witnesses of the edit type (the
other is the pixels, `edit_types.geometry_edit_type`). Keeping the parse apart lets the typing
step compare the two and flag a disagreement instead of silently trusting either, and lets a
VLM parser replace this one behind the same `InstructionParser` contract.

Patterns are checked in a fixed order and the first match wins: background and style wording
first ("Replace the background ...", "Turn the video into a cartoon" also contain a local verb),
then recolor ("make the ball red", "change the colour of ... to blue"), then remove, replace
("replace X with Y", "swap", "turn X into Y") and add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

COLOUR_WORDS = (
    "red|orange|yellow|green|cyan|blue|purple|pink|white|black|grey|gray|brown|violet|magenta|gold|golden|silver"
)

#: (edit type, pattern) in priority order; the first match names the edit.
PROMPT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "background_change",
        re.compile(r"\b(background|backdrop|scene(ry)?|setting|surroundings)\b"),
    ),
    (
        "global_style",
        re.compile(
            r"\b(style|styled|stylize|stylise|render(ed)?|look(s)? like|filter|posteri[sz]e|cartoon|sepia|painting|"
            r"black and white|grayscale|greyscale|monochrome|thermal|vintage|anime|sketch|watercolou?r|pixel art)\b"
            r"|\b(turn|convert|make|transform) the (whole )?(video|image|frame|clip|picture|photo)\b"
        ),
    ),
    (
        "recolor",
        re.compile(
            r"\b(recolou?r|colou?r of|change the colou?r|paint(ed)?|dye|tint)\b"
            rf"|\b(make|turn) the \w+(?: \w+){{0,2}} ({COLOUR_WORDS})\b"
        ),
    ),
    ("local_remove", re.compile(r"\b(remove|erase|delete|get rid of|take out|eliminate)\b")),
    (
        "local_replace",
        re.compile(r"\b(replace|swap|substitute|exchange|turn(ed)? (it |the \w+ )?into|change the \w+ (in)?to)\b"),
    ),
    ("local_add", re.compile(r"\b(add|insert|put|place|introduce|include)\b")),
)
_REPLACE = re.compile(
    r"\b(?:replace|swap|substitute|exchange) (?:the |a |an )?(.+?) (?:with|for|by) (?:a |an |the )?(.+)"
)
_RECOLOR_TO = re.compile(rf"\b(?:colou?r of|paint|dye|tint|make|turn) (?:the )?(.+?) (?:to |into )?({COLOUR_WORDS})\b")
_OBJECT = re.compile(r"\b(?:add|insert|put|place|introduce|include|remove|erase|delete|eliminate) (?:a |an |the )?(.+)")
_TRAILING = re.compile(r"\s+(?:moving|from|in|on|at|to|into|onto|behind|near|across|that|which|so)\b.*$|[.!?,;:]+$")


@dataclass(frozen=True)
class InstructionParse:
    """The edit the instruction names (None when no known phrasing matches) and its key words."""

    edit_type: str | None
    cue: str = ""  # the words that decided the type
    subject: str = ""  # the object acted on (added, removed, replaced, recoloured)
    replacement: str = ""  # the new object of a replace
    colour: str = ""  # the new colour of a recolor
    parser: str = "rules"


@runtime_checkable
class InstructionParser(Protocol):
    """Anything that turns a prompt into an `InstructionParse` (rules by default; a VLM can too)."""

    name: str

    def parse(self, prompt: str) -> InstructionParse: ...


def _clean(text: str) -> str:
    text = _TRAILING.sub("", text.strip())
    return _TRAILING.sub("", text).strip()


def parse_instruction(prompt: str) -> InstructionParse:
    """Rule-based parse: lower-cased, whitespace collapsed, the first matching pattern wins."""
    text = " ".join(str(prompt).lower().split())
    for edit_type, pattern in PROMPT_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        subject = replacement = colour = ""
        if edit_type == "local_replace" and (m := _REPLACE.search(text)):
            subject, replacement = _clean(m.group(1)), _clean(m.group(2))
        elif edit_type == "recolor" and (m := _RECOLOR_TO.search(text)):
            subject, colour = _clean(m.group(1)), m.group(2)
        elif edit_type in ("local_add", "local_remove") and (m := _OBJECT.search(text)):
            subject = _clean(m.group(1))
        return InstructionParse(edit_type, match.group(0), subject, replacement, colour)
    return InstructionParse(None)


class RuleInstructionParser:
    """The default `InstructionParser`: `parse_instruction`, no weights."""

    name = "rules"

    def parse(self, prompt: str) -> InstructionParse:
        return parse_instruction(prompt)
