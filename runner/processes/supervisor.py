"""Run the planned steps in fresh child processes and turn their events into the record.

A job is one or more tasks: one child for a single-process run; a worker
per process (plus ps tasks, or a chief) for a local cluster. Each child gets
the job as JSON on stdin, writes its output to a pipe (relayed to the
terminal and to logs, prefixed with the task in a cluster) and, if it runs
the plan, reports step events as JSON lines on a second pipe. The runner is
the record's only writer, so a child killed by any signal still leaves a
record saying so, with the finished steps. A cluster stops as a whole: the
first task to fail, a cluster that does not form in time, the job deadline
or Ctrl-C stop every process of it.
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
from typing import Any, BinaryIO, Optional

from tfrun.runner.processes import cluster_probe
from tfrun.runner.processes.tf_log_filter import DEFAULT_LEVEL, ConsoleFilter
from tfrun.runner.records.record import Record, relative, sanitize
from tfrun.tasks.core.processes import die_with_parent

LOG_NAME = "run.log"
TAIL_LINES = 200


@dataclass
class TaskSpec:
    """One process of a job."""

    name: str  # "main" alone; "worker:1", "ps:0", "chief:0" in a cluster
    cmd: list[str]
    env: dict[str, str]
    stdin: bytes = b""
    reports: bool = False  # its step events make the record (the chief)
    runs_plan: bool = True  # False for ps/worker servers, which run until stopped
    warm: Any = None  # a tfrun.runner.processes.warm_child.WarmChild already running with `env`, waiting for stdin


@dataclass
class Outcome:
    status: str  # succeeded | pruned | failed | interrupted
    error: dict[str, Any] | None = None


@dataclass
class _Task:
    spec: TaskSpec
    proc: subprocess.Popen
    out_fd: int
    events_fd: Optional[int]
    log: Optional[BinaryIO]
    console: ConsoleFilter  # TensorFlow's C++ log lines below run.tf_log_level go to the logs only
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    partial: bytes = b""
    events_buffer: bytes = b""
    error: dict[str, Any] | None = None  # a step_error it reported
    exited_at: float | None = None


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


class Supervisor:
    """Starts the tasks, relays output and events, enforces deadlines and signals."""

    def __init__(
        self,
        record: Record,
        tasks: list[TaskSpec],
        *,
        timeout_s: float | None,
        stop_grace_s: float,
        log_tail_lines: int,
        form_timeout_s: float | None = None,
        tf_log_level: int = DEFAULT_LEVEL,
    ):
        self.record = record
        self.specs = tasks
        self.die_with_parent = die_with_parent()  # children get SIGTERM if this runner is killed
        self.timeout_s = timeout_s
        self.form_timeout_s = form_timeout_s
        self.stop_grace_s = stop_grace_s
        self.log_tail_lines = log_tail_lines
        self.tf_log_level = tf_log_level
        self.cluster = len(tasks) > 1
        self.tasks: list[_Task] = []
        self.interrupt: int | None = None
        self.failure: dict[str, Any] | None = None  # why the runner stopped the job
        self.formed = form_timeout_s is None
        self.joining_since: float | None = None  # when the first task began to wait for the others (strategy step)
        self.servers_stopped = False

    # ------------------------------------------------------------------ run
    def run(self) -> Outcome:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        run_log = open(self.record.run_dir / LOG_NAME, "ab")
        try:
            for spec in self.specs:
                self.tasks.append(self._start(spec))
            self._save_task_table()
            self._relay(run_log)
        finally:
            self._stop_all(signal.SIGKILL, wait=True)
            for task in self.tasks:
                if not self.cluster:
                    sys.stdout.buffer.write(task.console.flush())
                    sys.stdout.flush()
                if task.partial.strip():
                    self._log(task, [task.partial], run_log)
                for fd in (task.out_fd, task.events_fd):
                    if fd is not None:
                        os.close(fd)
                if task.log:
                    task.log.close()
            run_log.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._save_task_table()
        return self._outcome()

    def _start(self, spec: TaskSpec) -> _Task:
        if spec.warm is not None:
            proc, events_read = spec.warm.proc, spec.warm.events_read
        else:
            events_read, events_write = os.pipe() if spec.runs_plan else (None, None)
            cmd = list(spec.cmd) + ([str(events_write)] if spec.runs_plan else [])
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=spec.env,
                pass_fds=(events_write,) if spec.runs_plan else (),
                start_new_session=True,
                preexec_fn=self.die_with_parent,
            )
            if events_write is not None:
                os.close(events_write)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(spec.stdin)
            proc.stdin.close()
        except BrokenPipeError:  # it died before reading its job (e.g. a Python that cannot start): its exit
            pass  # code is what the supervision loop reports, as for any task that fails
        log = None
        if self.cluster:
            path = self.record.run_dir / "logs" / f"{spec.name.replace(':', '-')}.log"
            path.parent.mkdir(exist_ok=True)
            log = open(path, "ab")
        out_fd = os.dup(proc.stdout.fileno())
        proc.stdout.close()
        if spec.reports:  # how it started; a zygote's client says "forked" (or why not) on its events pipe
            self.record.data["child"] = {"start": "warm" if spec.warm is not None else "fresh"}
        return _Task(spec, proc, out_fd, events_read, log, ConsoleFilter(self.tf_log_level))

    def _save_task_table(self) -> None:
        pids = self.record.data["pids"]
        if not self.cluster:
            pids["child"] = self.tasks[0].proc.pid if self.tasks else None
        else:
            pids["child"] = next((t.proc.pid for t in self.tasks if t.spec.reports), None)
            self.record.data["cluster"]["tasks"] = [
                {
                    "task": t.spec.name,
                    "pid": t.proc.pid,
                    "chief": t.spec.reports,
                    "role": "plan" if t.spec.runs_plan else "server",
                    "log": relative(self.record.run_dir / "logs" / f"{t.spec.name.replace(':', '-')}.log"),
                    "exit": None if t.proc.returncode is None else describe_exit(t.proc.returncode),
                }
                for t in self.tasks
            ]
        self.record.save()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.interrupt = signum

    # ---------------------------------------------------------------- relay
    def _relay(self, run_log: BinaryIO) -> None:
        sel = selectors.DefaultSelector()
        for task in self.tasks:
            sel.register(task.out_fd, selectors.EVENT_READ, (task, "out"))
            if task.events_fd is not None:
                sel.register(task.events_fd, selectors.EVENT_READ, (task, "events"))
        started = time.monotonic()
        stop_sent_at: float | None = None
        done_at: float | None = None
        while sel.get_map():
            for key, _ in sel.select(timeout=0.25):
                task, kind = key.data
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                elif kind == "out":
                    self._output(task, data, run_log)
                else:
                    self._events(task, data)
            now = time.monotonic()
            self._note_exits(now)
            if stop_sent_at is None and self._should_stop(started, now):
                # a cluster that never formed has nothing to save: stopped at once, so the job ends on time
                unformed = (self.failure or {}).get("type") == "ClusterFormationTimeout"
                self._stop_all(signal.SIGKILL if unformed else signal.SIGINT)
                stop_sent_at = now
            elif stop_sent_at is not None and now - stop_sent_at > self.stop_grace_s:
                self._stop_all(signal.SIGKILL)
            if self._finished():
                done_at = done_at or now
                if now - done_at > 1.0:  # a grandchild may hold a pipe open: stop waiting for EOF
                    break
        sel.close()

    def _note_exits(self, now: float) -> None:
        """Record exits; the first task to fail (before the job was stopped) fails the job."""
        for task in self.tasks:
            if task.exited_at is None and task.proc.poll() is not None:
                task.exited_at = now
                if task.spec.runs_plan:
                    failed = task.proc.returncode != 0
                else:  # a server only ends on its own when something went wrong
                    failed = not self.servers_stopped
                if failed and self.failure is None and self.interrupt is None and self.cluster:
                    self.failure = {
                        "type": "ClusterTaskFailed",
                        "task": task.spec.name,
                        "message": f"task {task.spec.name} {describe_exit(task.proc.returncode)} "
                        f"before the job finished (the first task to fail); "
                        f"stopped the other {len(self.tasks) - 1} task(s)",
                        "exit_code": task.proc.returncode,
                        "log_tail": self._tail(task),
                    }
                if self.cluster:
                    how = (
                        "stopped (the chief finished)"
                        if not task.spec.runs_plan and self.servers_stopped
                        else describe_exit(task.proc.returncode)
                    )
                    _print(f"[tfrun] task {task.spec.name} {how}")
                    self._save_task_table()

    def _formation_failure(self) -> dict[str, Any]:
        """Why the cluster did not form: the tasks of its spec (TF_CONFIG) whose addresses do not answer."""
        spec = cluster_probe.cluster_spec(t.spec.env for t in self.tasks)
        missing = cluster_probe.absent(spec)
        if missing:
            why = f"task(s) that never came: {', '.join(missing)}"
        elif spec:
            why = "every task's address answers, but they did not join one cluster (do all share this TF_CONFIG?)"
        else:
            why = f"tasks still waiting: {', '.join(t.spec.name for t in self.tasks if t.proc.poll() is None)}"
        return {
            "type": "ClusterFormationTimeout",
            "message": f"the cluster did not form within cluster.form_timeout_s={self.form_timeout_s:g} s of the "
            f"first task starting to join; {why}. Start every task of the cluster, each with its own "
            "TF_CONFIG task, and check that they can reach each other's addresses",
            "missing_tasks": missing,
        }

    def _reporter(self) -> _Task | None:
        return next((t for t in self.tasks if t.spec.reports), None)

    def _should_stop(self, started: float, now: float) -> bool:
        if self.interrupt is not None or self.failure is not None:
            return True
        if self.timeout_s is not None and now - started > self.timeout_s:
            self.failure = {
                "type": "Timeout",
                "message": f"the job exceeded run.timeout_s={self.timeout_s} and was stopped",
            }
            return True
        if not self.formed and self.joining_since is not None and now - self.joining_since > self.form_timeout_s:
            self.failure = self._formation_failure()
            return True
        reporter = self._reporter()
        if reporter is not None and reporter.proc.returncode == 0:
            # the chief finished: servers are stopped, workers get the grace time to finish too
            if not self.servers_stopped:
                self.servers_stopped = True
                for task in self.tasks:
                    if not task.spec.runs_plan and task.proc.poll() is None:
                        signal_group(task.proc, signal.SIGTERM)
            if all(t.proc.poll() is not None for t in self.tasks if t.spec.runs_plan):
                return False
            if now - (reporter.exited_at or now) > self.stop_grace_s:
                self.failure = {
                    "type": "ClusterTaskFailed",
                    "message": "workers did not finish after the chief",
                    "task": next(t.spec.name for t in self.tasks if t.proc.poll() is None),
                }
                return True
        return False

    def _finished(self) -> bool:
        return all(t.proc.poll() is not None for t in self.tasks)

    def _stop_all(self, sig: int, wait: bool = False) -> None:
        for task in self.tasks:
            if task.proc.poll() is None:
                signal_group(task.proc, sig)
        if wait:
            for task in self.tasks:
                try:
                    task.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass

    # --------------------------------------------------------------- output
    def _output(self, task: _Task, data: bytes, run_log: BinaryIO) -> None:
        """Terminal: the child's bytes as they come (prefixed by task in a cluster). Logs: whole lines,
        machine paths hidden, like the record's log tail."""
        text = task.partial + data
        *lines, task.partial = text.replace(b"\r", b"\n").split(b"\n")
        task.tail.extend(line.decode(errors="replace") for line in lines if line.strip())
        if not self.cluster:  # as it comes (progress bars keep working), less TensorFlow's C++ start-up lines
            sys.stdout.buffer.write(task.console.feed(data))
        else:
            prefix = f"[{task.spec.name}] ".encode()
            sys.stdout.buffer.write(b"".join(prefix + line + b"\n" for line in lines if task.console.keep(line)))
        sys.stdout.flush()
        self._log(task, lines, run_log)

    def _log(self, task: _Task, lines: list[bytes], run_log: BinaryIO) -> None:
        clean = [sanitize(line.decode(errors="replace")) for line in lines]
        prefix = f"[{task.spec.name}] " if self.cluster else ""
        run_log.write("".join(f"{prefix}{line}\n" for line in clean).encode())
        run_log.flush()
        if task.log:
            task.log.write("".join(f"{line}\n" for line in clean).encode())
            task.log.flush()

    def _events(self, task: _Task, data: bytes) -> None:
        task.events_buffer += data
        *lines, task.events_buffer = task.events_buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._event(task, json.loads(line))

    def _event(self, task: _Task, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "step_error":
            task.error = {k: event[k] for k in ("type", "message", "step", "traceback")}
        if kind == "step_start" and event["step"] == "strategy" and self.joining_since is None:
            self.joining_since = time.monotonic()  # TensorFlow's import before this does not count
        if kind == "step_end" and event["step"] == "strategy":
            self.formed = True
        if not task.spec.reports:
            return
        record = self.record
        if kind == "child":
            record.data["child"] = event["child"]
        if kind == "step_start":
            record.step_started(event["step"])
            _print(f"[tfrun] → {event['step']}")
        elif kind == "step_end":
            summary = event["result"].get("summary", "")
            record.step_finished(event["step"], event["seconds"], event["result"])
            _print(f"[tfrun] ✓ {event['step']:<9} {event['seconds']:7.2f} s  {summary}")
        elif kind == "epoch":
            record.epoch(event["logs"])
        elif kind == "resumed":
            record.data["resumed_from_epoch"] = event["epoch"]
            _print(f"[tfrun] resuming from the backup after epoch {event['epoch']}")
        elif kind == "pruned":  # an Optuna trial stopped by its pruner (tfrun.tasks.pruning): the plan ends
            record.data["pruned"] = event["pruned"]
            _print(f"[tfrun] pruned after epoch {event['pruned']['epoch']} by the sweep's pruner")
        elif kind == "devices":
            record.data["environment"]["devices"] = event["devices"]
        elif kind == "cloud_resource":
            record.cloud_resource(event["resource"])
        record.save()

    # -------------------------------------------------------------- outcome
    def _tail(self, task: _Task) -> list[str]:
        lines = list(task.tail) + ([task.partial.decode(errors="replace")] if task.partial.strip() else [])
        return [sanitize(line) for line in lines[-self.log_tail_lines :]] if self.log_tail_lines else []

    def _task_error(self, failure: dict[str, Any]) -> dict[str, Any]:
        """The error a failed cluster task reported itself (a UserCodeError naming the user's function, say):
        it says why, where "task worker:1 exited with code 1" only says who. The cluster's note is kept."""
        task = next((t for t in self.tasks if t.spec.name == failure.get("task")), None)
        if failure.get("type") != "ClusterTaskFailed" or task is None or not task.error:
            return {}
        error = {**task.error, "stopped": failure["message"]}
        if "traceback" in error:
            error["traceback"] = sanitize(error["traceback"])
        return error

    def _plan_done(self) -> bool:
        """Every planned step ended and succeeded (a step that catches the stop, like job=serve's, ends so)."""
        plan = self.record.data.get("plan") or []
        done = [s["name"] for s in self.record.data["steps"] if s["status"] == "succeeded"]
        return bool(plan) and done == list(plan)

    def _outcome(self) -> Outcome:
        reporter = self._reporter() or self.tasks[0]
        step = self.record.current_step()
        returncode = reporter.proc.returncode
        if self.interrupt is not None:
            name = signal.Signals(self.interrupt).name
            if returncode == 0 and self._plan_done():  # the signal was how it ended (job=serve: Ctrl-C stops it)
                self.record.data["stopped_by"] = name
                _print(f"[tfrun] stopped by {name} once every step had finished")
                return Outcome("succeeded")
            return Outcome(
                "interrupted",
                {
                    "type": "Interrupted",
                    "step": step,
                    "signal": name,
                    "exit_code": returncode,
                    "log_tail": self._tail(reporter),
                    "message": f"runner received {name} during step {step!r}; every process of the job was stopped",
                },
            )
        if self.failure is not None:
            error = {"step": step, "log_tail": self._tail(reporter), **self.failure}
            return Outcome("failed", {**error, **self._task_error(self.failure)})
        if returncode == 0:
            return Outcome("pruned" if self.record.data.get("pruned") else "succeeded")
        if returncode is not None and returncode < 0:
            name = signal.Signals(-returncode).name
            return Outcome(
                "failed",
                {
                    "type": "ChildKilled",
                    "step": step,
                    "signal": name,
                    "exit_code": returncode,
                    "message": f"child process killed by signal {name} during step {step!r}",
                    "log_tail": self._tail(reporter),
                },
            )
        error = dict(
            reporter.error
            or {
                "type": "ChildExited",
                "step": step,
                "message": f"child process exited with code {returncode} during step {step!r}",
            }
        )
        error.update(exit_code=returncode, log_tail=self._tail(reporter))
        if "traceback" in error:
            error["traceback"] = sanitize(error["traceback"])
        return Outcome("failed", error)
