"""The README stays a front door and the docs pages stay readable: size, line length, links, purpose lines.

Pure and fast: reads the Markdown files only. Prose means every line outside fenced code blocks and tables.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_WORDS = 2500
MAX_PROSE_LINE = 200
MAX_PURPOSE = 300

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
LIST_OR_BLOCK = re.compile(r"^(?:[-*+]\s|\d+[.)]\s|>|\||```|~~~|#|<)")


def docs_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def markdown_files() -> list[Path]:
    return [README, *docs_pages()]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) for every line outside fenced code blocks and tables."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            continue
        if fence is not None or stripped.startswith("|"):
            continue
        lines.append((number, line))
    return lines


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) for every link in prose that points at a file of this repository."""
    links: list[tuple[int, str]] = []
    in_code = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue
            links.append((number, target))
    return links


def test_readme_is_at_most_2500_words_as_wc_counts_them() -> None:
    words = len(README.read_text(encoding="utf-8").split())
    assert words <= MAX_README_WORDS, f"README.md has {words} words (at most {MAX_README_WORDS}): move reference text to docs/"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_prose_line_is_longer_than_200_characters(path: Path) -> None:
    long_lines = [f"{path.relative_to(ROOT)}:{n} ({len(line)} chars)" for n, line in prose_lines(path) if len(line) > MAX_PROSE_LINE]
    assert not long_lines, "prose lines over 200 characters (wrap them):\n" + "\n".join(long_lines)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file(path: Path) -> None:
    missing = []
    for number, target in relative_links(path):
        file_part = target.split("#", 1)[0]
        resolved = (path.parent / file_part).resolve()
        if not resolved.exists():
            missing.append(f"{path.relative_to(ROOT)}:{number} -> {target}")
    assert not missing, "links to missing files:\n" + "\n".join(missing)


def purpose_statement(path: Path) -> str:
    """The first paragraph after the page's '# Title' line, joined into one line; '' when the page has none."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("# "):
        return ""
    rest = lines[1:]
    while rest and not rest[0].strip():
        rest.pop(0)
    paragraph: list[str] = []
    for line in rest:
        if not line.strip():
            break
        paragraph.append(line.strip())
    if not paragraph or LIST_OR_BLOCK.match(paragraph[0]):
        return ""
    return " ".join(paragraph)


@pytest.mark.parametrize("path", docs_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_docs_page_opens_with_a_purpose_statement(path: Path) -> None:
    """Under its title, each page says in one short sentence what it is for (one line as rendered, however wrapped)."""
    purpose = purpose_statement(path)
    assert purpose, f"{path.relative_to(ROOT)}: '# Title', then a sentence saying what the page is for, before any list, table or code"
    assert len(purpose) <= MAX_PURPOSE, (
        f"{path.relative_to(ROOT)}: the purpose statement is {len(purpose)} characters (at most {MAX_PURPOSE}); say the rest below it"
    )


def test_the_helpers_skip_code_and_tables_and_find_relative_links(tmp_path: Path) -> None:
    """The helpers on a known sample: a checker that silently saw nothing would pass every page."""
    page = tmp_path / "page.md"
    long = "x" * 300
    page.write_text(
        "# Title\n\nPurpose.\n\n"
        f"```sh\n{long}\n[a](in-code.md)\n```\n"
        f"| {long} |\n"
        "See [here](other.md#part), [web](https://example.com), [anchor](#top) and `[code](span.md)`.\n"
        f"{long}\n",
        encoding="utf-8",
    )
    assert [n for n, line in prose_lines(page) if len(line) > MAX_PROSE_LINE] == [11]
    assert relative_links(page) == [(10, "other.md#part")]
    assert purpose_statement(page) == "Purpose."
    page.write_text("# Title\n\n- a list first\n", encoding="utf-8")
    assert purpose_statement(page) == ""
    assert "docs/deploying.md" in {target for _, target in relative_links(README)}
