"""What the model is told about a database: readable tables, columns, keys, sample values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.sql.guard import SqlDialect
from tools.sql.results import short

__all__ = ["ColumnDescription", "DatabaseDescription", "ForeignKey", "TableDescription"]

_COMPACT_SCHEMA_CHARS = 3_000


@dataclass(frozen=True)
class ColumnDescription:
    """One column: its type, whether it may be null, and a few values from the table."""

    name: str
    type: str
    nullable: bool
    primary_key: bool
    samples: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of this table reference ``referred_columns`` of ``referred_table``."""

    columns: list[str]
    referred_table: str
    referred_columns: list[str]


@dataclass(frozen=True)
class TableDescription:
    """One readable table or view."""

    name: str
    columns: list[ColumnDescription]
    primary_key: list[str]
    foreign_keys: list[ForeignKey]

    def line(self, *, types: bool = True) -> str:
        """``name(col type PK, col type -> other.col, ...)`` on one line."""
        refs = {
            c: f"{fk.referred_table}.{r}"
            for fk in self.foreign_keys
            for c, r in zip(fk.columns, fk.referred_columns, strict=False)
        }
        parts = []
        for column in self.columns:
            text = f"{column.name} {column.type}" if types else column.name
            if column.primary_key:
                text += " PK"
            if column.name in refs:
                text += f" -> {refs[column.name]}"
            parts.append(text)
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class DatabaseDescription:
    """The readable tables of one database, for the model."""

    dialect: SqlDialect
    tables: list[TableDescription]

    def compact(self, max_chars: int = _COMPACT_SCHEMA_CHARS) -> str:
        """One line per table, shortened to fit ``max_chars`` (for a tool description)."""
        for types in (True, False):
            text = "\n".join(t.line(types=types) for t in self.tables)
            if len(text) <= max_chars:
                return text
        lines: list[str] = []
        for index, table in enumerate(self.tables):
            line = table.line(types=False)
            rest = f"... and {len(self.tables) - index} more tables (see describe_database)"
            if sum(len(x) + 1 for x in lines) + len(line) + len(rest) + 1 > max_chars:
                lines.append(rest)
                break
            lines.append(line)
        return "\n".join(lines)

    def text(self) -> str:
        """Tables, columns, keys and sample values, as plain text."""
        blocks = []
        for table in self.tables:
            lines = [table.line()]
            for column in table.columns:
                if column.samples:
                    shown = ", ".join(short(repr(v), 40) for v in column.samples)
                    lines.append(f"  {column.name}: {shown}")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) or "(no readable tables)"
