"""The documentation site (mkdocs.yml): every relative link of README.md and of the pages under
doc/ leads to a file that exists (and to a heading of it, for a link with an anchor), every
page is in the site's menu, the README links to each page of its long sections, and the API
reference names every public name and renders it."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest
import yaml
from support.docs import PAGES, ROOT
from support.services import IN_CI

import doge_datagen

DOC = ROOT / "doc"
FILES = [ROOT / "README.md", *sorted(DOC.rglob("*.md"))]
# [text](target) and ![alt](target); [text][identifier] (a reference to the API) is not one.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")
# The pages whose public names are listed one by one (the modules behind them may move).
LISTED = {
    "reference/analysis.md": "doge_datagen.analysis",
    "reference/fit.md": "doge_datagen.fit",
    "reference/metrics.md": "doge_datagen.metrics",
    "reference/distributed.md": "doge_datagen.distributed",
    "reference/populations.md": "doge_datagen.populations",
}


def prose(path: Path) -> Iterator[str]:
    """The lines of a Markdown file outside its fenced code blocks."""
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def slug(heading: str) -> str:
    """The anchor of a heading, as GitHub and MkDocs' table of contents make it."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    return {slug(m.group(1)) for line in prose(path) for m in [re.match(r"#+ (.*)", line)] if m}


def relative_links(path: Path) -> List[Tuple[str, str]]:
    """(file part, anchor) of each link of the file that stays in the repository."""
    found = []
    for line in prose(path):
        for target in LINK.findall(line):
            if SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            found.append((file_part, anchor))
    return found


def nav_pages() -> List[str]:
    def walk(items: List) -> Iterator[str]:
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                yield from walk(value)
            else:
                yield value

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "doc"
    return list(walk(config["nav"]))


def listed_members(page: str) -> List[str]:
    """The names under ``members:`` of the page's ``:::`` directive."""
    text = (DOC / page).read_text(encoding="utf-8")
    block = text.split("members:", 1)[1]
    return re.findall(r"^\s+- (\w+)\s*$", block, re.MULTILINE)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(path):
    links = relative_links(path)
    for file_part, anchor in links:
        target = (path.parent / file_part).resolve() if file_part else path
        assert target.exists(), f"{path.name}: {file_part} does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"{path.name}: no heading #{anchor} in {target.name}"


def test_the_link_check_sees_links_and_catches_a_broken_one(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](#title) [gone](missing.md) [web](https://example.org)\n"
        "```shell\n[not a link](nowhere.md)\n```\n"
    )
    assert relative_links(page) == [("", "title"), ("missing.md", "")]
    assert anchors(page) == {"title"}
    assert slug("Watching a run: Prometheus metrics, a `status` page") == (
        "watching-a-run-prometheus-metrics-a-status-page"
    )


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    nav = nav_pages()
    pages = sorted(str(p.relative_to(DOC)) for p in DOC.rglob("*.md"))
    assert len(nav) == len(set(nav)), "a page is twice in the nav"
    # index.md is README.md, made the home page by scripts/mkdocs_hooks.py.
    assert nav[0] == "index.md" and not (DOC / "index.md").exists()
    assert sorted(nav[1:]) == pages
    for image in DOC.glob("*.png"):
        assert (
            any(image.name in (DOC / p).read_text() for p in pages)
            or image.name in (ROOT / "README.md").read_text()
        ), f"{image.name} is shown nowhere"


def test_the_readme_links_each_page_of_its_sections_in_their_order():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_links = [readme.index(f"]({name})") for name in PAGES]
    assert first_links == sorted(first_links)
    guide = [p for p in nav_pages() if f"doc/{p}" in PAGES]
    assert [f"doc/{p}" for p in guide] == list(PAGES)


def test_the_reference_names_every_top_level_and_sink_name():
    top = (DOC / "reference" / "doge_datagen.md").read_text(encoding="utf-8")
    for name in doge_datagen.__all__:
        assert f"`{name}`" in top, name
    sinks = importlib.import_module("doge_datagen.sinks")
    index = (DOC / "reference" / "sinks" / "index.md").read_text(encoding="utf-8")
    for name in sinks.__all__:
        if name[0].isupper() and name.endswith(("Sink", "SinkFactory")):
            assert f"`{name}`" in index, name


@pytest.mark.parametrize("page", sorted(LISTED))
def test_a_listed_page_names_exactly_the_public_names_of_its_module(page):
    module = importlib.import_module(LISTED[page])
    members = listed_members(page)
    assert sorted(members) == sorted(module.__all__)
    for name in members:
        getattr(module, name)  # importable from the public path


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Dict[str, str]:
    if not IN_CI:
        pytest.importorskip("mkdocs", reason="the dev extra builds the site")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    return {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in out.rglob("*.html")}


def test_the_site_renders_every_listed_name_of_the_reference(site):
    for page, module in LISTED.items():
        html = site[page.replace(".md", "/index.html")]
        for name in listed_members(page):
            assert f'id="{module}.{name}"' in html, f"{module}.{name} is not rendered"


def test_the_home_page_is_the_readme_with_its_links_made_to_work(site):
    home = site["index.html"]
    assert "Set-up on a fresh machine" in home and 'href="sinks/"' in home
    assert 'src="states.png"' in home and 'href="LICENSE"' in home
    scaling = site["scaling/index.html"]
    assert 'href="../#reproducibility"' in scaling
    # Sphinx roles of the docstrings are shown as the code they mark.
    model = site["reference/model/index.html"]
    assert ":class:" not in model and ":meth:" not in model
    # A table cell's escaped pipe (GitHub's form) shows as a pipe.
    assert "json\\|ndjson" in (DOC / "sinks.md").read_text()
    assert "json|ndjson" in site["sinks/index.html"] and "\\|" not in site["sinks/index.html"]
