"""`job=promote alias=… source=…`: the rules of the job, and its registry's check before anything runs.

Which registry moves the alias is the first of tfrun.tasks.promote.PROMOTERS that handles the source (with the
target); a source none handles is exit 2 naming what each accepts. After validation, the promoter's check runs
here in the runner (the version exists, the registry answers), so a wrong name is exit 2 with no record.
"""

from __future__ import annotations

from typing import Any, Iterator

from tfrun.tasks import promote as promoters
from tfrun.tasks.core.problems import ConfigError, Problem

PROMOTE = "promote"


def problems(config: Any) -> Iterator[Problem]:
    """alias only with job=promote; job=promote needs an alias and a source a promoter handles, on this machine."""
    if config.job.value != PROMOTE:
        if config.alias is not None:
            yield Problem("alias", config.alias, f"null unless job=promote (job={config.job.value} moves no alias)")
        return
    if config.alias is None:
        yield Problem("alias", None, "the alias to move with job=promote, e.g. alias=champion")
    if config.cluster.on_vertex or config.cluster.local_processes:
        yield Problem("cluster", config.cluster.name, "none with job=promote (a promote trains nothing)")
    if config.source is None:
        yield Problem("source", None, f"the version to promote with job=promote: {promoters.accepted()}")
        return
    promoter = promoters.for_source(config.source, config.target.name)
    if promoter is None:
        yield Problem(
            "source",
            config.source,
            f"a version a registry promotes (with target={config.target.name}): {promoters.accepted()}",
        )
        return
    if config.alias is not None:
        yield from promoter.problems(config)


def check(config: Any) -> None:
    """job=promote: the promoter's check (a version that exists, a registry that answers); ConfigError if not."""
    if config.job.value != PROMOTE:
        return
    try:
        promoters.check(config)
    except promoters.PromoteError as err:
        raise ConfigError([Problem("source", config.source, f"a version that can be promoted ({err})")]) from None
