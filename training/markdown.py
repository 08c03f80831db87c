"""Markdown for what training writes: reports, analysis tables and the benchmark tables."""

from __future__ import annotations


def table_head(*columns: str) -> list[str]:
    """A table's header and delimiter rows: equal in cells, or the table does not render."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
