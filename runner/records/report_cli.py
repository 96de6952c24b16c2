"""`tfrun-records report DIR... [-o FILE]`: one self-contained HTML page of the runs and sweeps below DIRs.

Damaged records (and damaged sweep.json files) are named on stderr, one line each, and left off the page;
the page is still written and the command exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tfrun.runner.records.cli_common import EXIT_OK, existing_dirs


def cmd_report(args: argparse.Namespace) -> int:
    from tfrun.runner.records import report

    existing_dirs(args.dirs)
    data = report.write(args.dirs, Path(args.output))
    print(
        f"{args.output}: {len(data['runs'])} run(s), {len(data['sweeps'])} sweep(s); one self-contained file "
        "(opens offline; links to records and artifacts are relative to it)"
    )
    return EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page of the runs and sweeps below DIRs")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="folders holding runs and sweeps (e.g. runs multiruns)")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE", help="the page (default: report.html)")
    p.set_defaults(func=cmd_report)
