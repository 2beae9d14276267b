"""What a load did: rows read, loaded, already present and rejected, and the first rejects."""

from __future__ import annotations

from dataclasses import dataclass, field

from flowhouse.core.contract import RAW_SCHEMA

SHOWN_REJECTS = 20


@dataclass(frozen=True)
class Reject:
    row_number: int
    field: str | None
    value: str | None
    reason: str
    action: str = "rejected"  # or field_dropped: the row was kept without the field


@dataclass
class LoadReport:
    input: str
    source_file: str
    load_id: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    fields_dropped: int = 0
    problems: int = 0  # every reject recorded in raw.rejects, row-level and field-level
    rejects: list[Reject] = field(default_factory=list)  # the first SHOWN_REJECTS of them
    ignored_columns: list[str] = field(default_factory=list)
    kept_in_properties: list[str] = field(default_factory=list)

    def describe(self) -> str:
        dropped = f", {self.fields_dropped} with a field dropped" if self.fields_dropped else ""
        lines = [
            f"{self.source_file} -> {RAW_SCHEMA}.{self.input} (load {self.load_id}): "
            f"{self.rows_read} rows read, {self.rows_loaded} loaded, "
            f"{self.rows_unchanged} already present, {self.rows_rejected} rejected{dropped}"
        ]
        if self.kept_in_properties:
            lines.append(f"  columns kept in properties: {', '.join(self.kept_in_properties)}")
        if self.ignored_columns:
            lines.append(
                f"  ignored columns (not in the contract): {', '.join(self.ignored_columns)}"
            )
        for r in self.rejects:
            value = "" if r.value is None else f" = {r.value!r}"
            where = f"{r.field}{value}: " if r.field else ""
            kept = " (row kept without this field)" if r.action == "field_dropped" else ""
            lines.append(f"  {self.source_file}: row {r.row_number}: {where}{r.reason}{kept}")
        if self.problems > len(self.rejects):
            lines.append(
                f"  and {self.problems - len(self.rejects)} more in {RAW_SCHEMA}.rejects "
                f"(load id {self.load_id})"
            )
        return "\n".join(lines)
