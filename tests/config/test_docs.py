"""The README and docs/ stay usable: short README, every relative link and anchor resolves, every page indexed.

Anchors follow GitHub's heading slugs: lower case, punctuation other than `-` and `_` dropped, each space a
`-`, and `-1`, `-2`, … for repeated headings in one file.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md")), ROOT / "tests" / "bench" / "RESULTS.md"]
README_MAX_LINES = 150

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:


def prose(text):
    """The text without fenced code blocks and HTML comments (links there are not links)."""
    return COMMENT.sub("", FENCE.sub("", text))


def slug(heading):
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path):
    seen, found = {}, set()
    for match in HEADING.finditer(prose(path.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path):
    return [m.group(1) for m in LINK.finditer(CODE_SPAN.sub("", prose(path.read_text(encoding="utf-8"))))]


def broken_links(path, root=ROOT):
    broken = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(root) or not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.relative_to(root)}")
    return broken


def test_slugs_follow_github():
    assert (
        slug("Deploying on PostgreSQL with several workers") == "deploying-on-postgresql-with-several-workers"
    )
    assert slug("Registrations follow PUBLIC_BASE_URL") == "registrations-follow-public_base_url"
    assert slug("Custom-field types") == "custom-field-types"
    assert slug("Every run, oldest first") == "every-run-oldest-first"
    assert slug("First run: watch an invoice become a Jira issue (sandbox)") == (
        "first-run-watch-an-invoice-become-a-jira-issue-sandbox"
    )
    assert (
        slug("Ingest (make bench-ingest) — 2026-11-30 06:31 UTC")
        == "ingest-make-bench-ingest--2026-11-30-0631-utc"
    )


def test_the_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A heading\n\n## A heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#a-heading) [ok](other.md#a-heading-1) [ok](#page) [web](https://example.com)\n"
        "[gone](missing.md) [bad anchor](other.md#nope) `[in code](missing.md)`\n\n"
        "```\n[in a fence](missing.md)\n```\n<!-- [in a comment](missing.md) -->\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "missing.md: no such file",
        "other.md#nope: no heading with anchor #nope in other.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page):
    assert broken_links(page) == []


def test_readme_fits_a_screen_and_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, "the reference belongs in docs/ (see docs/README.md)"
    assert "make run" in text and "make test" in text


def test_every_docs_page_is_in_the_index():
    indexed = {(DOCS / target.partition("#")[0]).resolve() for target in links(DOCS / "README.md")}
    pages = {page.resolve() for page in DOCS.rglob("*.md") if page.name != "README.md"}
    assert sorted(p.name for p in pages - indexed) == [], "add one line for each page to docs/README.md"


def test_the_sections_the_readme_promised_exist():
    for name in (
        "configuration",
        "connecting",
        "webhooks",
        "mappings",
        "operations",
        "vendor-behaviours",
        "architecture",
        "testing",
    ):
        assert (DOCS / f"{name}.md").is_file(), name
    assert "adding-a-kind" in anchors(DOCS / "architecture.md")
    assert "latest-figures" in anchors(ROOT / "tests" / "bench" / "RESULTS.md")


def test_every_environment_variable_is_documented():
    names = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    docs = "\n".join(page.read_text(encoding="utf-8") for page in DOCS.rglob("*.md"))
    assert sorted(name for name in names if f"`{name}`" not in docs) == []
