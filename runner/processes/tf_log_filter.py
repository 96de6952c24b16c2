"""Keep TensorFlow's C++ start-up lines off the console; run.log still gets every line.

On a CPU-only machine every run prints `oneDNN custom operations are on`, `Could not find cuda
drivers` and an `E0000 ... failed call to cuInit` that looks like an error but is not. Most of them
are written before absl's logging is initialised, so TF_CPP_MIN_LOG_LEVEL does not hide them, and
hiding them in the child would also take them out of run.log. So the supervisor's console relay
drops the C++ log lines (TensorFlow's absl format, its older dated format, the TFLite runtime's
`INFO: ...` lines and the int8 quantizer's bare `fully_quantize: ...` line, counted as INFO) below
`run.tf_log_level`; the log files keep everything.

run.tf_log_level counts like TF_CPP_MIN_LOG_LEVEL (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL): the console
shows C++ log lines at that level and above. The default, 3, shows only FATAL ones (a crash);
0 shows all that the child prints. Python-side output (tfrun's lines, Keras' epoch lines, Python
warnings, tracebacks) is never filtered.
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_LEVEL = 3
LEVELS = {"I": 0, "W": 1, "E": 2, "F": 3}

# absl: `I0000 00:00:1795976480.504595    4280 port.cc:153] ...`; TensorFlow's older format:
# `2026-11-29 18:22:31.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] ...`
_ABSL = re.compile(rb"([IWEF])\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] ")
_LEGACY = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) \S+:\d+\] ")
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LITE = re.compile(rb"(INFO|WARNING|ERROR): (?=\S)")  # the TFLite runtime's logger: `INFO: Created TensorFlow Lite ...`
_LITE_LEVELS = {b"INFO": 0, b"WARNING": 1, b"ERROR": 2}
# the MLIR quantizer (TFLite int8 conversion) writes this line to stderr with no log header
_QUANTIZER = re.compile(rb"fully_quantize: \d+, inference_type: ")
_QUANTIZER_PREFIX = b"fully_quantize: "
_CONTINUATIONS = (b"To enable the following instructions:",)  # cpu_feature_guard's second line
# what a line's first bytes may be while it could still become one of the above (held back until known)
_ABSL_START = re.compile(rb"[IWEF](\d{0,3}|\d{4}( [\d:.]*( +\d*( [^\s\]]*)?)?)?)")
_LEGACY_START = re.compile(rb"\d{1,4}(-\d{0,2}(-\d{0,2}( \d{0,2}(:\d{0,2}(:\d{0,2}(\.\d*(:( [IWEF]?)?)?)?)?)?)?)?)?")
_HOLD_AT_MOST = 200  # bytes: a longer line without a newline is not a C++ log line in the making


def level_of(line: bytes) -> int | None:
    """The C++ log level of a whole line, or None when it is not one of TensorFlow's C++ log lines."""
    match = _ABSL.match(line) or _LEGACY.match(line)
    if match:
        return LEVELS[match.group(1).decode()]
    if line.startswith(_ABSL_NOTICE):
        return LEVELS["W"]
    if _QUANTIZER.match(line):
        return LEVELS["I"]
    match = _LITE.match(line)
    return _LITE_LEVELS[match.group(1)] if match else None


def configured_level(run: Any) -> int:
    """run.tf_log_level, or the default while the schema has no such field."""
    return int(getattr(run, "tf_log_level", DEFAULT_LEVEL))


class ConsoleFilter:
    """Turns a child's output chunks into what the console shows.

    Bytes pass through as they come (progress bars redraw with \\r and need no newline); only a line
    whose start could be a C++ log header is held until its newline decides it.
    """

    def __init__(self, min_level: int = DEFAULT_LEVEL):
        self.min_level = min_level
        self.pending = b""  # the start of a line not yet decided
        self.at_line_start = True
        self.dropped_previous = False  # the last whole line was a hidden C++ line

    def feed(self, data: bytes) -> bytes:
        """The part of `data` (after what was held back) the console should show now."""
        text, self.pending = self.pending + data, b""
        out: list[bytes] = []
        pos = 0
        while pos < len(text):
            end = text.find(b"\n", pos)
            if not self.at_line_start:  # the rest of a line already shown
                stop = len(text) if end < 0 else end + 1
                out.append(text[pos:stop])
                pos, self.at_line_start = stop, end >= 0
                continue
            if end < 0:  # a line's start, no newline yet
                rest = text[pos:]
                if self._could_be_header(rest):
                    self.pending = rest
                else:
                    out.append(rest)
                    self.at_line_start = False
                    self.dropped_previous = False
                break
            line = text[pos:end]
            if self._hidden(line):
                self.dropped_previous = True
            else:
                out.append(text[pos : end + 1])
                self.dropped_previous = False
            pos = end + 1
        return b"".join(out)

    def flush(self) -> bytes:
        """What is still held back (the child ended without a newline)."""
        rest, self.pending = self.pending, b""
        return b"" if self._hidden(rest) else rest

    def keep(self, line: bytes) -> bool:
        """For output relayed line by line (a cluster's tasks): whether the console shows this line."""
        hidden = self._hidden(line)
        self.dropped_previous = hidden
        return not hidden

    def _hidden(self, line: bytes) -> bool:
        level = level_of(line)
        if level is None:
            return self.dropped_previous and line.startswith(_CONTINUATIONS)
        return level < self.min_level

    def _could_be_header(self, start: bytes) -> bool:
        """Whether a line beginning with `start` may still turn out to be hidden."""
        if len(start) > _HOLD_AT_MOST:
            return False
        if _ABSL.match(start) or _LEGACY.match(start) or _LITE.match(start) or _ABSL_NOTICE.startswith(start):
            return True
        if any(name.startswith(start) or start.startswith(name + b":") for name in _LITE_LEVELS):
            return True
        if _QUANTIZER_PREFIX.startswith(start) or start.startswith(_QUANTIZER_PREFIX):
            return True
        if self.dropped_previous and any(c.startswith(start) or start.startswith(c) for c in _CONTINUATIONS):
            return True
        return bool(_ABSL_START.fullmatch(start) or _LEGACY_START.fullmatch(start))
