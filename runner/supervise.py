"""Run the planned steps in a fresh child process and turn its events into the record.

The child gets the config on stdin, writes its output to a pipe (relayed to
the terminal and to run.log) and reports step events as JSON lines on a
second pipe. The runner stays the record's only writer, so a child killed
by any signal still leaves a record saying so, with the finished steps.
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from runner.record import Record, sanitize

LOG_NAME = "run.log"


@dataclass
class Outcome:
    status: str  # succeeded | failed | interrupted
    error: dict[str, Any] | None = None


@dataclass
class _State:
    interrupt: int | None = None  # signal number received by the runner
    child_error: dict[str, Any] | None = None
    child_interrupted: bool = False
    timed_out: bool = False
    events_buffer: bytes = b""
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200))
    partial_line: bytes = b""


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Supervisor:
    """Starts the child, relays its output and events, enforces deadlines and signals."""

    def __init__(self, record: Record, job: dict[str, Any], env: dict[str, str], *,
                 timeout_s: float | None, stop_grace_s: float, log_tail_lines: int,
                 on_step: Callable[[str, float, dict[str, Any]], None] | None = None):
        self.record = record
        self.job = job
        self.env = env
        self.timeout_s = timeout_s
        self.stop_grace_s = stop_grace_s
        self.log_tail_lines = log_tail_lines
        self.on_step = on_step
        self.state = _State()

    # ------------------------------------------------------------------ run
    def run(self) -> Outcome:
        events_read, events_write = os.pipe()
        cmd = [sys.executable, "-m", "runner.child", str(events_write)]
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=self.env, pass_fds=(events_write,),
                                    start_new_session=True, cwd=os.getcwd())
            os.close(events_write)
            self.record.data["pids"]["child"] = proc.pid
            self.record.save()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(self.job).encode())
            proc.stdin.close()
            with open(self.record.run_dir / LOG_NAME, "ab") as log:
                self._relay(proc, events_read, log)
            returncode = proc.wait()
        finally:
            os.close(events_read)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._outcome(returncode)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.state.interrupt = signum

    def _relay(self, proc: subprocess.Popen, events_fd: int, log: Any) -> None:
        sel = selectors.DefaultSelector()
        out_fd = proc.stdout.fileno()
        sel.register(out_fd, selectors.EVENT_READ)
        sel.register(events_fd, selectors.EVENT_READ)
        started = time.monotonic()
        stop_sent_at: float | None = None
        exited_at: float | None = None
        while sel.get_map():
            for key, _ in sel.select(timeout=0.25):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                elif key.fd == out_fd:
                    self._output(data, log)
                else:
                    self._events(data)
            now = time.monotonic()
            if stop_sent_at is None and (self.state.interrupt is not None or self._deadline_passed(started, now)):
                self._signal_group(proc, signal.SIGINT)
                stop_sent_at = now
            elif stop_sent_at is not None and now - stop_sent_at > self.stop_grace_s and proc.poll() is None:
                self._signal_group(proc, signal.SIGKILL)
            if proc.poll() is not None:
                exited_at = exited_at or now
                if now - exited_at > 1.0:  # a grandchild still holds the pipes: stop waiting for EOF
                    break
        sel.close()

    def _deadline_passed(self, started: float, now: float) -> bool:
        if self.timeout_s is not None and now - started > self.timeout_s:
            self.state.timed_out = True
        return self.state.timed_out

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    # --------------------------------------------------------------- output
    def _output(self, data: bytes, log: Any) -> None:
        log.write(data)
        log.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        lines = (self.state.partial_line + data).replace(b"\r", b"\n").split(b"\n")
        self.state.partial_line = lines.pop()
        self.state.tail.extend(line.decode(errors="replace") for line in lines if line.strip())

    def _events(self, data: bytes) -> None:
        self.state.events_buffer += data
        *lines, self.state.events_buffer = self.state.events_buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._event(json.loads(line))

    def _event(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        record = self.record
        if kind == "step_start":
            record.step_started(event["step"])
            _print(f"[tfrun] → {event['step']}")
        elif kind == "step_end":
            summary = event["result"].get("summary", "")
            record.step_finished(event["step"], event["seconds"], event["result"])
            _print(f"[tfrun] ✓ {event['step']:<9} {event['seconds']:7.2f} s  {summary}")
            if self.on_step:
                self.on_step(event["step"], event["seconds"], event["result"])
        elif kind == "epoch":
            record.epoch(event["logs"])
        elif kind == "resumed":
            record.data["resumed_from_epoch"] = event["epoch"]
            _print(f"[tfrun] resuming from the backup after epoch {event['epoch']}")
        elif kind == "devices":
            record.data["environment"]["devices"] = event["devices"]
        elif kind == "step_error":
            self.state.child_error = {k: event[k] for k in ("type", "message", "step", "traceback")}
        elif kind == "interrupted":
            self.state.child_interrupted = True
        record.save()

    # -------------------------------------------------------------- outcome
    def _outcome(self, returncode: int) -> Outcome:
        if self.state.partial_line.strip():
            self.state.tail.append(self.state.partial_line.decode(errors="replace"))
        tail = [sanitize(line) for line in list(self.state.tail)[-self.log_tail_lines:]] if self.log_tail_lines else []
        step = self.record.current_step()
        if returncode == 0 and self.state.interrupt is None and not self.state.timed_out:
            return Outcome("succeeded")
        if self.state.timed_out:
            return Outcome("failed", {"type": "Timeout", "step": step, "exit_code": returncode,
                                      "message": f"the job exceeded run.timeout_s={self.timeout_s} and was stopped",
                                      "log_tail": tail})
        if self.state.interrupt is not None:
            name = signal.Signals(self.state.interrupt).name
            return Outcome("interrupted", {"type": "Interrupted", "step": step, "signal": name,
                                           "exit_code": returncode,
                                           "message": f"runner received {name} during step {step!r}; child stopped",
                                           "log_tail": tail})
        if returncode < 0:
            name = signal.Signals(-returncode).name
            return Outcome("failed", {"type": "ChildKilled", "step": step, "signal": name, "exit_code": returncode,
                                      "message": f"child process killed by signal {name} during step {step!r}",
                                      "log_tail": tail})
        error = dict(self.state.child_error or {
            "type": "ChildExited", "step": step,
            "message": f"child process exited with code {returncode} during step {step!r}"})
        error.update(exit_code=returncode, log_tail=tail)
        if "traceback" in error:
            error["traceback"] = sanitize(error["traceback"])
        return Outcome("failed", error)
