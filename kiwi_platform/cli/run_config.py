"""`--config FILE` for the run commands: the Launchpad's run config, from a YAML or JSON file.

The CLI has flags only for what most runs change (batch, manifest, selection); everything else an
asset's `dg.Config` offers (frame counts, thresholds, backends, training steps) is set the way the
UI sets it, as run config, so a scripted run and a Launchpad run can use the very same document.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from kiwi_platform.errors import KiwiUserError


def load_run_config(path: Path | None) -> dict:
    """The run config in `path` (YAML, so JSON too); {} for None; one-line error if unreadable."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise KiwiUserError(f"run config {path}: {exc.strerror or exc}", code="bad_arguments") from None
    except yaml.YAMLError as exc:
        raise KiwiUserError(
            f"run config {path} is not YAML or JSON: {str(exc).splitlines()[0]}", code="bad_arguments"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KiwiUserError(
            f"run config {path} must be a mapping (e.g. ops: {{...}}), not {type(data).__name__}", code="bad_arguments"
        )
    return data


def merged(base: dict, extra: dict) -> dict:
    """`base` with `extra` merged in, key by key (nested dicts merge; on a clash `base` wins)."""
    out = dict(extra)
    for key, value in base.items():
        out[key] = merged(value, out[key]) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
