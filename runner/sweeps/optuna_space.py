"""`hydra.sweeper.params` and sweep overrides in Hydra's grammar, as Optuna distributions.

The grammar and its meaning are hydra-optuna-sweeper 1.3's, so a search space users wrote keeps meaning the same
trials: `choice(a, b)` is categorical; `range(start, stop[, step])` is an integer (or, with a float, stepped)
distribution from start to stop *inclusive*, as that sweeper made it (`shuffle(range(...))`: categorical);
`interval(low, high)` is uniform over floats (Hydra reads its bounds as floats), `tag(log, interval(...))`
log-uniform. Any other
override is fixed: every trial gets it as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfrun.tasks.core import hydra_adapter


class SearchSpaceError(ValueError):
    """A parameter Optuna cannot sample (one line: the key, the value and what is allowed)."""


@dataclass
class SearchSpace:
    distributions: dict[str, Any] = field(default_factory=dict)  # key -> optuna.distributions.*
    fixed: list[str] = field(default_factory=list)  # overrides every trial gets, as written

    def grid(self) -> dict[str, list[Any]]:
        """The points of each parameter for Optuna's GridSampler (discrete parameters only)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        points: dict[str, list[Any]] = {}
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                points[key] = list(dist.choices)
            elif isinstance(dist, IntDistribution) and not dist.log:
                points[key] = list(range(dist.low, dist.high + 1, dist.step))
            elif isinstance(dist, FloatDistribution) and dist.step is not None and not dist.log:
                count = int(round((dist.high - dist.low) / dist.step))
                points[key] = [dist.low + i * dist.step for i in range(count + 1)]
            else:
                raise SearchSpaceError(
                    f"hydra.sweeper.params.{key}: the grid sampler needs choice(...) or range(...), not {dist}"
                )
        return points


def parse(overrides: list[str]) -> SearchSpace:
    """The search space and the fixed overrides of `key=value` strings (params first, then the command line's:
    a later one for the same key wins)."""
    space = SearchSpace()
    fixed: dict[str, str] = {}
    for override in hydra_adapter.parse_overrides(overrides):
        key = override.get_key_element()
        if override.is_sweep_override():
            space.distributions[key] = distribution(override)
            fixed.pop(key, None)
        else:
            space.distributions.pop(key, None)
            fixed[key] = override.input_line or f"{key}={override.get_value_element_as_str()}"
    space.fixed = list(fixed.values())
    return space


def _values(override: Any) -> list[Any]:
    values = hydra_adapter.sweep_values(override)
    for value in values:
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise SearchSpaceError(
                f"{override.input_line}: a choice of str, int, float, bool or null values, not {value!r}"
            )
    return values


def distribution(override: Any) -> Any:
    """One sweep override as an Optuna distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    where = override.input_line
    value = override.value()
    if override.is_choice_sweep():
        return CategoricalDistribution(_values(override))
    if override.is_range_sweep():
        if value.shuffle:
            return CategoricalDistribution(_values(override))
        if any(isinstance(x, float) for x in (value.start, value.stop, value.step)):
            return FloatDistribution(float(value.start), float(value.stop), step=float(value.step))
        return IntDistribution(int(value.start), int(value.stop), step=int(value.step))
    if override.is_interval_sweep():
        log = "log" in value.tags
        if not value.start < value.end:
            raise SearchSpaceError(f"{where}: interval(low, high) with low < high")
        if log and value.start <= 0:
            raise SearchSpaceError(f"{where}: tag(log, interval(low, high)) with low > 0")
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise SearchSpaceError(
        f"{where}: Optuna samples choice(...), range(...), interval(...) and tag(log, interval(...)), not this sweep"
    )


def trial_overrides(space: SearchSpace, params: dict[str, Any]) -> list[str]:
    """A trial's overrides: its sampled parameters, then the fixed ones."""
    return [*(f"{key}={_hydra_value(value)}" for key, value in params.items()), *space.fixed]


def _hydra_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
