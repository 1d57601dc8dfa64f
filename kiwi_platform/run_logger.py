"""The console logger `kiwi` uses for its runs: one short line per event, no stack traces.

Dagster's default console logger prints full tracebacks of failed steps; on the command line the
run summary already names each failure in one line, and the UI keeps the full error.
"""

from __future__ import annotations

import logging
import sys

import dagster as dg


class OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or meta.get("job_name") or ""
        text = (meta.get("orig_message") or record.getMessage()).strip().splitlines()
        first = text[0] if text else ""
        stamp = self.formatTime(record, "%H:%M:%S")
        return f"{stamp} {record.levelname.lower():7s} {step}: {first}" if step else f"{stamp} {first}"


@dg.logger(
    {"log_level": dg.Field(str, default_value="INFO", is_required=False)},
    description="One line per event on stderr, without stack traces (the kiwi CLI's run output).",
)
def kiwi_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("kiwi", level=init_context.logger_config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    logger.addHandler(handler)
    return logger
