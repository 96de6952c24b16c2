"""tfrun's Python API (what `tfrun.run`, `tfrun.sweep`, `tfrun.load`, `tfrun.records` and `tfrun.compose` are).

The top package `tfrun` exposes these names lazily, so `import tfrun` loads none of this. One module each:

- `records.py`: `Record`, a finished (or running) run's record as an object; `load` and `records` read them.
- `compose.py`: the config composed and validated in this process, as the command does, so a bad value raises
  `ConfigError` before anything starts (`compose`, and the checks `run` and `sweep` make first).
- `command.py`: the real `tfrun` command in a child process: its output streamed as it comes, Ctrl-C passed on,
  the records it started reported back (`TFRUN_RECORD_LOG`, tfrun.runner.processes.execute).
- `progress.py`: the one-line progress display in Jupyter (epoch k/N and the latest metrics), read from the
  record the runner rewrites after every epoch.
- `sweeps.py`: `Sweep`, a multirun's jobs, best job and summary table.
- `calls.py`: `run` and `sweep`, which put the above together.
"""
