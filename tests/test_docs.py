"""The documentation inside the repository: the README stays a first page, every link between
the pages resolves, and every citation of a docs section in the code names one that exists."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
#: Where the code cites the docs: the package, the scripts, rules, schema, configs, Makefile.
CITING = [
    *(REPO / "src/headplast").rglob("*.py"),
    *(REPO / "workflow").rglob("*.py"),
    *(REPO / "workflow").rglob("*.yaml"),
    *(REPO / "rules").glob("*.smk"),
    *(REPO / "config").glob("*.yaml"),
    REPO / "Makefile",
]
CITATION = re.compile(r'docs/([a-z_]+\.md),? \(?"([^"]+)"')


def sections(page: Path) -> set[str]:
    """A page's headings and its bold paragraph titles ("**Measuring precision.**")."""
    text = page.read_text()
    heads = {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", text, re.M)}
    heads |= {re.sub(r" \(.*\)$", "", h) for h in heads}  # "Across seeds (`summary/`)"
    bold = {m.group(1) for m in re.finditer(r"\*\*([^*]+?)\.\*\*", text)}
    return heads | bold


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_readme_is_a_first_page():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    text = "\n".join(lines)
    for must in ("make demo", "make test", "findings.html", "explorer.html", "docs/methods.md"):
        assert must in text


@pytest.mark.parametrize(
    "page",
    [REPO / "README.md", REPO / "config" / "README.md", *DOCS],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_links_between_pages_resolve(page):
    for target, frag in re.findall(
        r"\]\(((?!https?:)[^)#\s]+\.md)(?:#([^)]+))?\)", page.read_text()
    ):
        path = (page.parent / target).resolve()
        assert path.exists(), f"{page.name} links to missing {target}"
        if frag:
            assert frag in {anchor(s) for s in sections(path)}, (
                f"{page.name}: no #{frag} in {target}"
            )


def test_every_cited_section_exists():
    cited = 0
    for f in CITING:
        for page, section in CITATION.findall(f.read_text()):
            section = " ".join(section.replace("#", " ").split())  # wrapped over lines
            assert (REPO / "docs" / page).exists(), f"{f.name} cites missing docs/{page}"
            assert section in sections(REPO / "docs" / page), (
                f'{f.relative_to(REPO)} cites docs/{page}, "{section}": no such section'
            )
            cited += 1
    assert cited >= 10


def test_nothing_cites_outside_the_repository():
    pattern = re.compile(r"SPEC\.md|\bissues? \d+", re.I)  # our tracker; upstream "#684" is fine
    for f in [*CITING, REPO / "README.md", *DOCS]:
        hits = pattern.findall(f.read_text())
        assert not hits, f"{f.relative_to(REPO)} cites {hits}"
