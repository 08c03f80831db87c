"""Every code block in README.md and docs/ runs, or is checked against the code it names.

- ```python blocks run as written, from a directory that has the shipped models/, unless the
  line before holds `<!-- not run: REASON -->`;
- in ```bash blocks, each `nld ...` command is parsed by the command line `nld` itself parses
  with (every option must exist), each `curl` names an operation of the service's OpenAPI
  schema, and each `python bench/X.py` a script that exists;
- every relative link in README.md points to a file that exists, and every page of docs/ that
  a message of the code points to exists, with the section it names.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
NOT_RUN = re.compile(r"<!-- not run: \S.*-->")


def _blocks(lang: str) -> list[tuple[str, str, bool]]:
    """(page:line, body, marked not run) of every block in `lang`."""
    found = []
    for page in PAGES:
        text = "\n" + page.read_text()
        for m in FENCE.finditer(text):
            if m["lang"] == lang:
                line = text[: m.start("body")].count("\n")
                where = f"{page.relative_to(ROOT)}:{line}"
                found.append((where, m["body"], bool(NOT_RUN.search(m["before"]))))
    return found


def _commands(body: str) -> list[str]:
    """The block's command lines: continuations joined, comments and prompts dropped."""
    lines = body.replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip().removeprefix("$ ")
        if line and not line.startswith("#"):
            out.append(line.split(" #", 1)[0].strip())
    return out


# README's quickstart runs in tests/test_readme.py, which also checks what its comments say.
PYTHON = [b for b in _blocks("python") if not b[2] and not b[0].startswith("README.md")]


@pytest.mark.parametrize(
    ("where", "body"), [(w, b) for w, b, _ in PYTHON], ids=[w for w, *_ in PYTHON]
)
def test_python_blocks_run(where, body, tmp_path, monkeypatch):
    (tmp_path / "models").symlink_to(ROOT / "models")
    monkeypatch.chdir(tmp_path)
    exec(compile(body, where, "exec"), {"__name__": "__docs__"})


def test_bash_blocks_name_real_commands_operations_and_scripts():
    from service.main import create_app
    from training.cli import parser

    paths = [
        re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$")
        for p in create_app().openapi()["paths"]
    ]
    checked = 0
    for where, body, _ in _blocks("bash"):
        for command in _commands(body):
            words = shlex.split(command)
            if words[0] == "nld":
                try:
                    parser().parse_args(words[1:])
                except SystemExit:
                    pytest.fail(f"{where}: `{command}` is not a valid nld command")
            elif words[0] == "curl":
                url = next(w for w in words if "://" in w)
                path = "/" + url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
                assert any(p.match(path) for p in paths), f"{where}: no operation {path}"
            elif words[:2] == ["python", words[1]] and words[1].startswith("bench/"):
                assert (ROOT / words[1]).is_file(), f"{where}: no script {words[1]}"
            else:
                continue
            checked += 1
    assert checked > 10  # the check saw the commands (a broken pattern would see none)


def _slug(heading: str) -> str:
    """The anchor mkdocs gives a heading."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[\s]+", "-", text)


def test_messages_point_to_pages_and_sections_that_exist():
    pointers = []
    for path in [
        *ROOT.glob("nld/**/*.py"),
        *ROOT.glob("training/**/*.py"),
        *ROOT.glob("service/**/*.py"),
    ]:
        pointers += re.findall(r"docs/([\w/-]+\.md)(?:#([\w-]+))?", path.read_text())
    assert pointers  # the pattern finds the references there are
    for page, anchor in pointers:
        text = (ROOT / "docs" / page).read_text()
        headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
        assert not anchor or anchor in headings, f"docs/{page} has no section #{anchor}"


def test_readme_links_point_to_files_that_exist():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert local
    for link in local:
        assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"
