"""MkDocs hooks of the documentation site (mkdocs.yml: ``hooks``).

- README.md, at the repository root, is the site's home page: its links into ``doc/`` are
  made relative to ``doc/``, and the other repository files it links to (``LICENSE``, the
  examples) are copied into the site, so that every link of the README works there as it does
  on the repository's own page. A page's link to ``../README.md`` goes to the home page.
- The API reference renders the docstrings, which are written for Sphinx: an inline role
  (``:class:`Transition```, ``:meth:`~doge_datagen.model.DataOnlineGenerator.start```) is shown
  as the code it marks, as Sphinx shows it (a ``~`` keeps the last name only), and a paragraph
  that introduces a literal block ends with one colon, not two.
- A ``|`` inside a table cell is written ``\\|`` (GitHub's form, also inside code); the cell
  shows ``|``.
"""

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = "doc/"

# A Markdown link or image target: ](target) or ](target#anchor), without a scheme.
_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#)([^)#\s]+)")
_ROLE = re.compile(
    r":(?:py:)?(?:mod|class|func|meth|attr|data|exc|obj|const):<code>(~?)([^<]*)</code>"
)
_LITERAL = re.compile(r"::</p>")
_CELL = re.compile(r"<td[^>]*>.*?</td>", re.DOTALL)


def readme_markdown() -> str:
    """README.md as a page of ``doc/``: links into ``doc/`` relative to it."""
    text = README.read_text(encoding="utf-8")
    return text.replace("](" + DOCS, "](")


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "index.md", content=readme_markdown()))
    for target in sorted(set(_LINK.findall(README.read_text(encoding="utf-8")))):
        path = ROOT / target
        if target.startswith(DOCS) or not path.is_file():
            continue
        if files.get_file_from_path(target) is None:
            files.append(File.generated(config, target, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return markdown.replace("](../README.md", "](index.md")


def _role(match: "re.Match[str]") -> str:
    tilde, name = match.groups()
    if tilde:
        name = name.rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    html = _CELL.sub(lambda cell: cell.group(0).replace("\\|", "|"), html)
    if not page.file.src_uri.startswith("reference/"):
        return html
    return _LITERAL.sub(":</p>", _ROLE.sub(_role, html))
