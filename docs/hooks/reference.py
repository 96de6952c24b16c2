"""MkDocs hook: the pages generated at build time, so the site keeps one copy of each source.

- `reference.md` from `conf/` and the schemas (`tfrun.runner.config.reference.markdown`), the same source as
  `tfrun --help`;
- `architecture.md` and `benchmarks.md` from ARCHITECTURE.md and BENCHMARKS.md at the repository root;
- the screenshots the pages show, from `bench/results/`;
- the group table (marker GROUP_TABLE), a group's options (OPTION_TABLE) and each command's --help (HELP)
  where a page holds their markers.
"""

from __future__ import annotations

import functools
import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from tfrun.runner.config import help as help_text
from tfrun.runner.config import reference

ROOT_PAGES = {"architecture.md": "ARCHITECTURE.md", "benchmarks.md": "BENCHMARKS.md"}
GROUP_TABLE = "<!-- generated: the group table -->"
OPTION_TABLE = re.compile(r"<!-- generated: the options of (\S+) -->")
HELP = re.compile(r"<!-- generated: (tfrun|tfrun-records|tfrun-serve) --help -->")
IMAGES = {"img/report_page.png": "bench/results/report_page.png", "img/web_page.png": "bench/results/web_page.png"}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    files.append(File.generated(config, "reference.md", content=reference.markdown(root / "conf")))
    for page, source in ROOT_PAGES.items():
        files.append(File.generated(config, page, content=(root / source).read_text(encoding="utf-8")))
    for image, source in IMAGES.items():
        files.append(File.generated(config, image, abs_src_path=str(root / source)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Put the generated tables where a page holds their markers (linking to the reference page)."""
    if "<!-- generated:" not in markdown:
        return markdown
    root = Path(config.config_file_path).parent
    found = {group.name: group for group in reference.groups(root / "conf")}
    link = posixpath.relpath("reference.md", posixpath.dirname(page.file.src_uri) or ".")
    markdown = markdown.replace(GROUP_TABLE, "\n".join(reference.group_table(list(found.values()), page=link)))

    def options(match: re.Match[str]) -> str:
        if match[1] not in found:
            raise PluginError(f"{page.file.src_uri}: {match[0]} names no group (groups: {', '.join(found)})")
        return "\n".join(reference.option_table(found[match[1]], page=link))

    markdown = OPTION_TABLE.sub(options, markdown)
    markdown = HELP.sub(lambda match: "```text\n" + command_help(match[1], root) + "\n```", markdown)
    if "<!-- generated:" in markdown:
        raise PluginError(f"{page.file.src_uri}: a `<!-- generated: ... -->` marker this hook does not know")
    return markdown


def command_help(command: str, root: Path) -> str:
    """A command's --help as it prints it (argparse's at a fixed width for tfrun-records and tfrun-serve)."""
    if command == "tfrun":
        return help_text.render(root / "conf")
    from tfrun.runner import records_cli, serve_cli

    parser = (records_cli if command == "tfrun-records" else serve_cli).build_parser()
    parser.prog = command
    parser.formatter_class = functools.partial(parser.formatter_class, width=100)  # not the terminal's
    return parser.format_help().rstrip()
