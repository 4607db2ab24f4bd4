"""Every document the project cites is in the project: a clone has all it needs to follow a citation.

Checked in every tracked (or new, not ignored) text file: each `something.md` it names, with its `#anchor`,
resolves inside the repository (from the repository root, or from the citing file's folder); each relative
Markdown link in a `.md` file points at a file that exists; and no file names a path on a developer's machine.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Split so that this file does not cite them itself.
MACHINE_PATHS = ("/" + "work/", "../" + "shared", "/" + "home/", "/" + "Users/")
DOC = re.compile(r"(?<![\w/.-])((?:\.\.?/)*(?:[\w.-]+/)*[\w.-]+\.md)(?:#([\w-]+))?(?![\w-])")
URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s<>\"'`]+", re.I)
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def project_files(root: Path) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [root / name for name in listed.split("\0") if name and (root / name).is_file()]


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # images and other binaries cite nothing


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    seen: dict[str, int] = {}
    found = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _resolve(root: Path, citing: Path, target: str) -> Path | None:
    for base in (citing.parent, root):
        candidate = (base / target).resolve()
        if candidate.is_file() and candidate.is_relative_to(root):
            return candidate
    return None


def _outside_urls(line: str, pattern: re.Pattern) -> list[re.Match]:
    spans = [m.span() for m in URL.finditer(line)]
    return [m for m in pattern.finditer(line) if not any(start <= m.start() < end for start, end in spans)]


def citation_problems(root: Path, files: list[Path]) -> list[str]:
    """One line per citation that does not resolve inside `root`, and per machine path named."""
    problems = []
    for path in files:
        text = read_text(path)
        if text is None:
            continue
        where = path.relative_to(root)
        for number, line in enumerate(text.splitlines(), 1):
            problems += [f"{where}:{number}: names a machine path {p!r}" for p in MACHINE_PATHS if p in line]
            cited = [(m[1], m[2]) for m in _outside_urls(line, DOC)]
            if path.suffix == ".md":
                for match in _outside_urls(line, LINK):
                    target, _, anchor = match[1].partition("#")
                    if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                        cited.append((target or str(where), anchor or None))
            for target, anchor in dict.fromkeys(cited):
                resolved = path if target == str(where) else _resolve(root, path, target)
                if resolved is None:
                    problems.append(f"{where}:{number}: cites {target}, which is not in the repository")
                elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
                    problems.append(f"{where}:{number}: cites {target}#{anchor}, a heading {target} does not have")
    return problems


def test_every_cited_document_and_anchor_is_in_the_repository_and_no_machine_path_is_named():
    checked = [path for path in project_files(ROOT) if path != Path(__file__).resolve()]  # its examples are bad

    problems = citation_problems(ROOT, checked)

    assert problems == [], "\n".join(problems)


def test_the_docs_the_code_cites_exist_and_readme_links_them():
    readme = (ROOT / "README.md").read_text()

    assert "(docs/iamport-v1.md)" in readme and "(docs/architecture.md)" in readme
    assert {"tokens", "webhooks", "order-ids", "refunds-and-checksum", "sources"} <= anchors(
        (ROOT / "docs" / "iamport-v1.md").read_text()
    )
    assert "a-renewals-path" in anchors((ROOT / "docs" / "architecture.md").read_text())


def test_the_check_reports_missing_documents_missing_anchors_and_machine_paths(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Tokens and keys\n\nSee [the code](../app.py).\n")
    (tmp_path / "app.py").write_text(
        "# fine: docs/guide.md#tokens-and-keys, and https://example.com/other.md\n"
        "# (style.md §4) and docs/guide.md#tokens\n"
        f"# see {MACHINE_PATHS[0]}shared/iamport-v1.md\n"
    )
    (tmp_path / "README.md").write_text("[guide](docs/guide.md) and [gone](docs/gone.md#x) and [self](#guide)\n")
    files = [tmp_path / "docs" / "guide.md", tmp_path / "app.py", tmp_path / "README.md"]

    problems = citation_problems(tmp_path, files)

    assert problems == [
        "app.py:2: cites style.md, which is not in the repository",
        "app.py:2: cites docs/guide.md#tokens, a heading docs/guide.md does not have",
        f"app.py:3: names a machine path {MACHINE_PATHS[0]!r}",
        "README.md:1: cites docs/gone.md, which is not in the repository",
        "README.md:1: cites README.md#guide, a heading README.md does not have",
    ]
