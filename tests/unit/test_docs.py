"""The documentation site builds with `mkdocs build --strict` (no broken link or anchor, no page left out of nav,
no warning), offline; README stays a page or two and maps the site (issue 26)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import command_env
from tfrun.runner.config import reference

ROOT = Path(__file__).resolve().parents[2]
README_LIMIT = 250
GENERATED = {"reference.md", "architecture.md", "benchmarks.md"}  # written by docs/hooks/reference.py


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    env = command_env(NO_MKDOCS_2_WARNING="1")  # Material's notice about MkDocs 2, not a finding about this site
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def nav_pages(config: dict) -> list[str]:
    found: list[str] = []

    def walk(items: list) -> None:
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            walk(value) if isinstance(value, list) else found.append(value)

    walk(config["nav"])
    return found


def mkdocs_config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_the_site_builds_strict_without_a_warning(tmp_path: Path):
    proc = build(ROOT, tmp_path / "site")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert not re.search(r"^(WARNING|ERROR)", output, flags=re.M), output
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "cluster.form_timeout_s" in reference and "target=web" in reference and "track=mlflow" in reference
    assert "Bird's eye view" in (tmp_path / "site" / "architecture" / "index.html").read_text()
    assert (tmp_path / "site" / "img" / "web_page.png").is_file()
    html = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html  # works offline


def test_a_broken_anchor_or_a_page_left_out_of_nav_fails_the_build(tmp_path: Path):
    """The strict checks can fail: a copy of the site with an orphan page and a link to an anchor that is not there."""
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    for shared in ("conf", "bench", "ARCHITECTURE.md", "BENCHMARKS.md", "tasks", "runner"):
        os.symlink(ROOT / shared, copy / shared)
    (copy / "docs" / "orphan.md").write_text("# Nobody links here\n")
    with (copy / "docs" / "sweeps.md").open("a") as page:
        page.write("\n[gone](configs.md#no-such-section)\n")
    output = build(copy, tmp_path / "site")
    assert output.returncode != 0
    assert "orphan.md" in output.stderr and "no-such-section" in output.stderr, output.stderr


def test_every_page_is_in_nav_and_every_nav_page_exists():
    pages = nav_pages(mkdocs_config())
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert set(pages) == on_disk | GENERATED, sorted(set(pages) ^ (on_disk | GENERATED))
    assert not GENERATED & on_disk, "generated pages have no copy in docs/"


def test_the_site_is_offline_and_strict_by_configuration():
    config = mkdocs_config()
    assert config["theme"]["font"] is False  # no Google Fonts
    assert [p if isinstance(p, str) else next(iter(p)) for p in config.get("plugins", [])] == ["search"]
    assert set(config["validation"].values()) == {"warn"}  # what --strict turns into errors


def test_readme_is_short_and_maps_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LIMIT, f"README.md has {len(readme.splitlines())} lines"
    assert "scripts/tfrun" in readme and "scripts/test" in readme
    linked = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    assert all((ROOT / link).is_file() for link in linked), linked
    written = {f"docs/{page}" for page in nav_pages(mkdocs_config()) if page not in GENERATED}
    assert written <= linked, f"README's map leaves out {sorted(written - linked)}"


def reference_defaults() -> dict[str, set[str]]:
    """Every key the reference lists, with the defaults it has over the options that declare it."""
    conf = ROOT / "conf"
    keys = [k for g in reference.groups(conf) for o in g.options for k in _keys(conf, g.name, o.name)]
    keys += [k for section in reference.section_keys(conf).values() for k in section]
    found: dict[str, set[str]] = {}
    for key in keys:
        found.setdefault(key.key, set()).add(reference.shown(key.default))
    return found


def _keys(conf: Path, group: str, option: str) -> list[reference.Key]:
    return reference.option_keys(conf, group, option) if (conf / group / f"{option}.yaml").is_file() else []


def _same(written: str, defaults: set[str]) -> bool:
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    return written in defaults or (number(written) is not None and number(written) in {number(d) for d in defaults})


def test_hand_written_key_tables_agree_with_the_reference():
    """A page's own `| `group.key` | default | ... |` rows name keys that exist, with a default one of the options has."""
    known = reference_defaults()
    wrong = []
    for page in (ROOT / "docs").rglob("*.md"):
        for key, written in re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \| ([^|]+?) \|", page.read_text(), flags=re.M):
            value = written.strip("`")
            if key not in known:
                wrong.append(f"{page.name}: {key} is no key of the reference")
            elif "," not in value and not _same(value, known[key]):
                wrong.append(f"{page.name}: {key} default {value} (the reference: {sorted(known[key])})")
    assert not wrong, wrong
