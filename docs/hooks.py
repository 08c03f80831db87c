"""mkdocs hooks: the reference pages are written from the code at build time, so they cannot
drift from it. A page holding the marker `<!-- reference: cli -->` gets every `nld` command's
help, from the argument parser `nld` itself parses with; `<!-- reference: http -->` gets the
service's operations, from its OpenAPI schema."""

from __future__ import annotations

import argparse
from typing import Any

MARKERS = {"cli": "<!-- reference: cli -->", "http": "<!-- reference: http -->"}


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKERS["cli"] in markdown:
        markdown = markdown.replace(MARKERS["cli"], cli_reference())
    if MARKERS["http"] in markdown:
        markdown = markdown.replace(MARKERS["http"], http_reference())
    return markdown


def _commands(
    parser: argparse.ArgumentParser, path: list[str]
) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """Every (sub)command under `parser`, depth first, with its words after `nld`."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub is not parser:
                    found += _commands(sub, [*path, name])
    return found


def cli_reference() -> str:
    from training.cli import parser

    parts = []
    seen: set[int] = set()
    for words, p in _commands(parser(), []):
        if not words or id(p) in seen:
            continue
        seen.add(id(p))
        p.prog = " ".join(["nld", *words])
        parts.append(f"## {p.prog}\n\n```text\n{p.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def http_reference() -> str:
    from service.main import create_app

    schema = create_app().openapi()
    rows = ["| method | path | what it does |", "|---|---|---|"]
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            summary = (op.get("summary") or "").replace("|", "\\|")
            rows.append(f"| {method.upper()} | `{path}` | {summary} |")
    parts = ["\n".join(rows)]
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            parts.append(f"### {method.upper()} `{path}`\n")
            if op.get("description"):
                parts.append(op["description"].strip() + "\n")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if body:
                parts.append(f"Request body: `{_name(body.get('schema', {}))}`\n")
            ok = op.get("responses", {}).get("200", {}).get("content", {})
            for kind, content in ok.items():
                parts.append(f"Response ({kind}): `{_name(content.get('schema', {}))}`\n")
    names = sorted(schema.get("components", {}).get("schemas", {}))
    parts.append("## Schemas\n\n" + ", ".join(f"`{n}`" for n in names) + "\n")
    parts.append(
        "Every schema with its fields is in the service's own OpenAPI document, "
        "`GET /openapi.json`, and browsable at `/docs` on a running service.\n"
    )
    return "\n".join(parts)


def _name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if ref:
        return str(ref).rsplit("/", 1)[-1]
    return str(schema.get("type", "object"))
