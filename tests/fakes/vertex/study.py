"""The study of a HyperparameterTuningJob: its spec checked, parameters suggested, measurements read.

Suggestions: Vertex's default algorithm (ALGORITHM_UNSPECIFIED) is Bayesian optimisation; the fake uses a
seeded random search for it and for RANDOM_SEARCH (deterministic given the fake's --seed and the order in
which tuning jobs are created), and a grid for GRID_SEARCH (integer, categorical and discrete parameters
only, as Vertex requires; the grid repeats when it has fewer points than trials). Random search honours
types and scales exactly: doubles uniform (UNIT_LINEAR_SCALE or unspecified), log-uniform
(UNIT_LOG_SCALE, min > 0) or reflected log-uniform (UNIT_REVERSE_LOG_SCALE, denser near max) in
[min, max]; integers the same, rounded and kept in range; categorical values uniformly; discrete values
uniformly, or (with a scale) the value nearest a linear / log draw. Conditional parameters are not emulated
(refused with UNIMPLEMENTED).

Automated stopping: the study spec's oneof `medianAutomatedStoppingSpec` | `decayCurveStoppingSpec` |
`convexAutomatedStoppingSpec` is checked (one at most) and kept as the job's `studySpec`. The median rule is
emulated as its proto documents it (`should_stop`): a running trial is stopped when its best value so far is
strictly worse than the median, over the SUCCEEDED trials, of each one's running average of the measurements it
reported up to the running trial's last step (or elapsed time with useElapsedDuration). The decay-curve and
convex rules (a Gaussian-process fit) are recorded but stop no trial.

Measurements: cloudml-hypertune (0.1.0.dev6) rewrites `$CLOUD_ML_HP_METRIC_FILE` on every report with
its last 100 reports, one JSON object per line: {"timestamp": t, "trial": "<id>", "<tag>": "<value>",
"global_step": "<step>", "checkpoint_path": ""} (values as strings). Each line with a study metric is a
measurement; the final one is the best by the first metric's goal (BEST_MEASUREMENT, the SDK's default)
or the last (LAST_MEASUREMENT, and MEASUREMENT_SELECTION_TYPE_UNSPECIFIED as the proto says).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any, Iterator

from .wire import ApiError

GOALS = {1: "MAXIMIZE", 2: "MINIMIZE"}
SCALES = {0: "SCALE_TYPE_UNSPECIFIED", 1: "UNIT_LINEAR_SCALE", 2: "UNIT_LOG_SCALE", 3: "UNIT_REVERSE_LOG_SCALE"}
ALGORITHMS = {0: "ALGORITHM_UNSPECIFIED", 2: "GRID_SEARCH", 3: "RANDOM_SEARCH"}
SELECTIONS = {0: "MEASUREMENT_SELECTION_TYPE_UNSPECIFIED", 1: "LAST_MEASUREMENT", 2: "BEST_MEASUREMENT"}
KINDS = ("doubleValueSpec", "integerValueSpec", "categoricalValueSpec", "discreteValueSpec")
STOPPING = ("medianAutomatedStoppingSpec", "decayCurveStoppingSpec", "convexAutomatedStoppingSpec")


def enum(table: dict[int, str], value: Any, where: str) -> str:
    """An enum sent as a number or a name (the SDK sends numbers), as its name."""
    if value is None or value == "":
        return table[0] if 0 in table else ""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        name = table.get(int(value))
    else:
        name = value if value in table.values() else None
    if name is None:
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{where}': {value!r}")
    return name


def check_study(spec: Any) -> dict:
    """A normalised copy of a StudySpec (enums as names, numbers as numbers); INVALID_ARGUMENT if wrong."""
    where = "hyperparameter_tuning_job.study_spec"
    if not isinstance(spec, dict) or not spec.get("metrics"):
        raise ApiError("INVALID_ARGUMENT", f"{where}.metrics is required.")
    metrics = []
    for n, metric in enumerate(spec["metrics"]):
        goal = enum(GOALS, metric.get("goal"), f"{where}.metrics[{n}].goal")
        if not metric.get("metricId") or goal not in GOALS.values():
            raise ApiError("INVALID_ARGUMENT", f"{where}.metrics[{n}] needs metric_id and goal (MAXIMIZE or MINIMIZE).")
        metrics.append({**metric, "goal": goal})
    if not spec.get("parameters"):
        raise ApiError("INVALID_ARGUMENT", f"{where}.parameters is required.")
    parameters, seen = [], set()
    for n, parameter in enumerate(spec["parameters"]):
        parameters.append(_check_parameter(parameter, f"{where}.parameters[{n}]"))
        if parameter["parameterId"] in seen:
            raise ApiError("INVALID_ARGUMENT", f"Duplicate parameter_id {parameter['parameterId']!r}.")
        seen.add(parameter["parameterId"])
    algorithm = enum(ALGORITHMS, spec.get("algorithm"), f"{where}.algorithm")
    if algorithm == "GRID_SEARCH" and any("doubleValueSpec" in p for p in parameters):
        raise ApiError(
            "INVALID_ARGUMENT",
            "GRID_SEARCH requires every parameter to be INTEGER, CATEGORICAL or "
            "DISCRETE; a DOUBLE parameter has no grid.",
        )
    selection = enum(SELECTIONS, spec.get("measurementSelectionType"), f"{where}.measurement_selection_type")
    stopping = [key for key in STOPPING if key in spec]
    if len(stopping) > 1 or any(not isinstance(spec[key], dict) for key in stopping):
        raise ApiError(
            "INVALID_ARGUMENT",
            f"{where}.automated_stopping_spec: at most one of {', '.join(STOPPING)}, each a message.",
        )
    return {
        **spec,
        "metrics": metrics,
        "parameters": parameters,
        "algorithm": algorithm,
        "measurementSelectionType": selection,
    }


def _check_parameter(parameter: dict, where: str) -> dict:
    if not parameter.get("parameterId"):
        raise ApiError("INVALID_ARGUMENT", f"{where}.parameter_id is required.")
    if parameter.get("conditionalParameterSpecs"):
        raise ApiError("UNIMPLEMENTED", "fake-vertex does not emulate conditional parameter specs.")
    kinds = [kind for kind in KINDS if kind in parameter]
    if len(kinds) != 1:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"{where}: exactly one of double_value_spec, integer_value_spec, "
            "categorical_value_spec and discrete_value_spec is required.",
        )
    kind, value_spec = kinds[0], dict(parameter[kinds[0]])
    scale = enum(SCALES, parameter.get("scaleType"), f"{where}.scale_type")
    if kind in ("doubleValueSpec", "integerValueSpec"):
        cast = float if kind == "doubleValueSpec" else int
        if "minValue" not in value_spec and "maxValue" not in value_spec:
            raise ApiError("INVALID_ARGUMENT", f"{where}: min_value and max_value are required.")
        try:  # proto3 JSON leaves out a field at its default: a missing bound is 0 (the SDK sends min=0 so)
            low, high = cast(value_spec.get("minValue", 0)), cast(value_spec.get("maxValue", 0))
        except ValueError:
            raise ApiError("INVALID_ARGUMENT", f"{where}: min_value and max_value must be numbers.") from None
        if low > high:
            raise ApiError("INVALID_ARGUMENT", f"{where}: min_value ({low}) is greater than max_value ({high}).")
        value_spec.update(minValue=low, maxValue=high)
    elif kind == "categoricalValueSpec":
        values = value_spec.get("values") or []
        if not values or len(set(values)) != len(values):
            raise ApiError("INVALID_ARGUMENT", f"{where}.categorical_value_spec.values must be distinct and non-empty.")
    else:
        values = [float(v) for v in value_spec.get("values") or []]
        if not values or any(b - a < 1e-10 for a, b in zip(values, values[1:])):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{where}.discrete_value_spec.values must be non-empty, in increasing order and at least 1e-10 apart.",
            )
        value_spec["values"] = values
        low, high = values[0], values[-1]
    if scale in ("UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE") and kind != "categoricalValueSpec" and low <= 0:
        raise ApiError("INVALID_ARGUMENT", f"{where}: {scale} needs values greater than 0 (min is {low}).")
    return {**parameter, kind: value_spec, "scaleType": scale}


def _draw(rng: random.Random, low: float, high: float, scale: str) -> float:
    if low == high:
        return low
    if scale == "UNIT_LOG_SCALE":
        return min(high, max(low, math.exp(rng.uniform(math.log(low), math.log(high)))))
    if scale == "UNIT_REVERSE_LOG_SCALE":
        return min(high, max(low, low + high - math.exp(rng.uniform(math.log(low), math.log(high)))))
    return rng.uniform(low, high)


def suggest_one(rng: random.Random, parameter: dict) -> Any:
    """One random value of one parameter, of its type and within its range."""
    scale = parameter["scaleType"]
    if "doubleValueSpec" in parameter:
        spec = parameter["doubleValueSpec"]
        return _draw(rng, spec["minValue"], spec["maxValue"], scale)
    if "integerValueSpec" in parameter:
        spec = parameter["integerValueSpec"]
        if scale == "SCALE_TYPE_UNSPECIFIED" or scale == "UNIT_LINEAR_SCALE":
            return rng.randint(spec["minValue"], spec["maxValue"])
        return min(
            spec["maxValue"], max(spec["minValue"], round(_draw(rng, spec["minValue"], spec["maxValue"], scale)))
        )
    if "categoricalValueSpec" in parameter:
        return rng.choice(parameter["categoricalValueSpec"]["values"])
    values = parameter["discreteValueSpec"]["values"]
    if scale == "SCALE_TYPE_UNSPECIFIED":
        return rng.choice(values)
    point = _draw(rng, values[0], values[-1], scale)
    distance = (
        (lambda v: abs(math.log(v) - math.log(point))) if scale != "UNIT_LINEAR_SCALE" else (lambda v: abs(v - point))
    )
    return min(values, key=distance)


def suggestions(study: dict, rng: random.Random) -> Iterator[list[dict]]:
    """Endless parameter sets [{"parameterId", "value"}] in trial order."""
    parameters = study["parameters"]
    if study["algorithm"] == "GRID_SEARCH":
        axes = []
        for p in parameters:
            if "integerValueSpec" in p:
                axes.append(list(range(p["integerValueSpec"]["minValue"], p["integerValueSpec"]["maxValue"] + 1)))
            else:
                axes.append(list((p.get("categoricalValueSpec") or p.get("discreteValueSpec"))["values"]))
        for point in itertools.cycle(itertools.product(*axes)):
            yield [{"parameterId": p["parameterId"], "value": v} for p, v in zip(parameters, point)]
    while True:
        yield [{"parameterId": p["parameterId"], "value": suggest_one(rng, p)} for p in parameters]


def measurements(path: Path, study: dict, started: float) -> tuple[list[dict], dict | None]:
    """(every measurement, the final one or None) from a cloudml-hypertune metric file."""
    ids = [m["metricId"] for m in study["metrics"]]
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return [], None
    for line in lines:
        try:
            report = json.loads(line)
            metrics = [{"metricId": i, "value": float(report[i])} for i in ids if i in report]
            step = int(float(report.get("global_step", 0) or 0))
            elapsed = max(0.0, float(report.get("timestamp", started)) - started)
        except (ValueError, TypeError, AttributeError):
            continue
        if metrics:
            out.append({"elapsedDuration": f"{elapsed:.3f}s", "stepCount": str(step), "metrics": metrics})
    primary = [m for m in out if m["metrics"][0]["metricId"] == ids[0]]
    if not primary:
        return out, None
    if study["measurementSelectionType"] == "BEST_MEASUREMENT":
        pick = max if study["metrics"][0]["goal"] == "MAXIMIZE" else min
        return out, pick(primary, key=lambda m: m["metrics"][0]["value"])
    return out, primary[-1]


def _beyond(value: float, median: float, goal: str) -> bool:
    """Whether `value` is strictly worse than `median` for the goal."""
    return value < median if goal == "MAXIMIZE" else value > median


def should_stop(study: dict, running: list[dict], completed: list[list[dict]]) -> bool:
    """The median automated stopping rule over the running trial's measurements and the completed trials'."""
    spec = study.get("medianAutomatedStoppingSpec")
    if spec is None or not running:
        return False
    metric, goal = study["metrics"][0]["metricId"], study["metrics"][0]["goal"]
    elapsed = bool(spec.get("useElapsedDuration"))

    def x(measurement: dict) -> float:
        return float(str(measurement["elapsedDuration"]).rstrip("s")) if elapsed else int(measurement["stepCount"])

    def values(measurements: list[dict], upto: float) -> list[float]:
        return [m["value"] for ms in measurements if x(ms) <= upto for m in ms["metrics"] if m["metricId"] == metric]

    mine = values(running, float("inf"))
    if not mine:
        return False
    upto = x(running[-1])
    averages = [sum(v) / len(v) for v in (values(ms, upto) for ms in completed) if v]
    if not averages:
        return False
    ordered = sorted(averages)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    best = max(mine) if goal == "MAXIMIZE" else min(mine)
    return _beyond(best, median, goal)
