"""From the file's columns to the canonical ones: ``_incoming``, a text column per canonical one.

Every canonical column is there (null when neither the file nor the mapping gives it), so the checks
never meet a missing column. Columns neither the contract nor the mapping uses go into
``properties`` for customers and events (under their normalized names; empty values are left out),
and are reported as ignored for products: a value is never shifted into another field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from flowhouse.core.contract import EVENT_PROPERTIES, Input
from flowhouse.core.errors import LoadError
from flowhouse.load.mapping import (
    CustomerWithEmail,
    InputMapping,
    LinesFromColumns,
    Source,
    Sql,
    Value,
    parse_sql,
)
from flowhouse.load.read import internal, normalize

EMAIL_LOOKUP = "_customer_email"
LINES = "_lines"


def _declared_types() -> dict[str, str]:
    """Property name -> type, for names every event type declares with the same type."""
    seen: dict[str, set[str]] = {}
    for properties in EVENT_PROPERTIES.values():
        for p in properties:
            seen.setdefault(p.name, set()).add(p.type)
    return {name: types.pop() for name, types in seen.items() if len(types) == 1}


DECLARED = _declared_types()


def _blank_to_null(e: exp.Expr) -> exp.Expr:
    return exp.func("nullif", exp.func("trim", e), exp.Literal.string(""))


def as_json(value: exp.Expr, kind: str | None) -> exp.Expr:
    """A text value as the JSON value of a property of type ``kind``: numbers and booleans that
    parse become JSON numbers and booleans; anything else stays text (and the checks say so)."""
    text = _blank_to_null(value)
    as_text = exp.func("to_json", text)
    if kind in ("number", "boolean"):
        to = "double" if kind == "number" else "boolean"
        return exp.func(
            "coalesce",
            exp.func("to_json", exp.TryCast(this=text, to=exp.DataType.build(to))),
            as_text,
        )
    if kind in ("list", "object"):
        return exp.If(this=exp.func("json_valid", text), true=exp.func("json", text), false=as_text)
    return as_text


@dataclass
class Projection:
    """What the file gives: the ``_incoming`` query and what happened to each column."""

    query: exp.Select
    provided: list[str]  # canonical columns the file or mapping gives
    kept_in_properties: list[str] = field(default_factory=list)  # file columns (original names)
    ignored: list[str] = field(default_factory=list)
    email_lookup: bool = False


class _Columns:
    """The file's columns by normalized name, and which of them something used."""

    def __init__(self, header: list[str], where: str) -> None:
        self.header = header
        self.where = where
        self.by_name: dict[str, list[str]] = {}
        for i, h in enumerate(header):
            self.by_name.setdefault(normalize(h), []).append(internal(i))
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return normalize(name) in self.by_name

    def get(self, name: str, field_: str) -> exp.Expr:
        key = normalize(name)
        if key not in self.by_name:
            raise LoadError(
                f"{self.where}: {field_}: the file has no column {name!r}; "
                f"its columns are {', '.join(self.header)}"
            )
        self.used.add(key)
        cols = [exp.column(c) for c in self.by_name[key]]
        if len(cols) == 1:
            return cols[0]
        return exp.func("coalesce", *[_blank_to_null(c) for c in cols])

    def source(self, src: Source, field_: str) -> exp.Expr:
        if isinstance(src, str):
            return self.get(src, field_)
        if isinstance(src, Value):
            return exp.Literal.string(src.value)
        if isinstance(src, CustomerWithEmail):
            return self.get(src.customer_with_email, field_)
        assert isinstance(src, Sql)
        parsed = parse_sql(src.sql, f"{self.where}: {field_}")
        return parsed.transform(
            lambda n: self.get(n.name, field_) if isinstance(n, exp.Column) else n
        )

    def unused(self) -> list[tuple[str, str]]:
        """(original name, normalized name) of every column nothing used, in file order."""
        seen: set[str] = set()
        out = []
        for h in self.header:
            key = normalize(h)
            if key not in self.used and key not in seen and key:
                seen.add(key)
                out.append((h, key))
        return out


def project(
    spec: Input, header: list[str], source: exp.Select, mapping: InputMapping | None, where: str
) -> Projection:
    cols = _Columns(header, where)
    m = mapping or InputMapping()
    base = source.subquery("_r")
    if m.one_record_per:
        base = _grouped(cols, m, source).subquery("_r")
    values: dict[str, exp.Expr] = {}
    email_lookup = False
    for c in spec.columns:
        src = m.columns.get(c.name)
        if src is not None:
            values[c.name] = cols.source(src, f"{spec.name}.columns.{c.name}")
            email_lookup |= isinstance(src, CustomerWithEmail)
        elif cols.has(c.name):
            values[c.name] = cols.get(c.name, c.name)
    unknown_columns = [m_ for m_ in m.columns if m_ not in spec.column_names]
    if unknown_columns:
        raise LoadError(
            f"{where}: {spec.name}.columns: no canonical column {', '.join(unknown_columns)}; "
            f"expected some of {', '.join(spec.column_names)}"
        )
    kept: list[str] = []
    ignored: list[str] = []
    if m.lines_from_columns is not None:
        base = _with_packed_lines(cols, m.lines_from_columns, base)
    if "properties" in spec.column_names:
        extra = {k: cols.source(s, f"{spec.name}.properties.{k}") for k, s in m.properties.items()}
        unused = cols.unused()
        extra |= {key: cols.get(key, key) for _, key in unused if key not in extra}
        kept = [h for h, _ in unused]
        has_lines = bool(m.lines) or m.lines_from_columns is not None
        if extra or has_lines:
            values["properties"] = _merged_properties(
                spec, values.get("properties"), extra, has_lines
            )
    else:
        ignored = [h for h, _ in cols.unused()]
    provided = [c for c in spec.column_names if c in values]
    selected = [exp.cast(values.get(c, exp.null()), "varchar").as_(c) for c in spec.column_names]
    email = [exp.cast(values["customer_id"], "varchar").as_(EMAIL_LOOKUP)] if email_lookup else []
    if email_lookup:
        selected[spec.column_names.index("customer_id")] = exp.cast(exp.null(), "varchar").as_(
            "customer_id"
        )
    query = exp.select(
        exp.column("row_number"), *selected, *email,
        exp.column("_unreadable"), exp.column("_extra"), exp.column("_record"),
    ).from_(base)  # fmt: skip
    return Projection(query, provided, kept, ignored, email_lookup)


def _merged_properties(
    spec: Input, base: exp.Expr | None, extra: dict[str, exp.Expr], has_lines: bool
) -> exp.Expr:
    """``properties`` from the file's own JSON (which wins) and the loose columns, as JSON text;
    a ``properties`` value that is not a JSON object is left as it is for the checks to reject."""
    pairs: list[exp.Expr] = []
    for key, value in extra.items():
        kind = DECLARED.get(key) if spec.name == "events" else None
        pairs += [exp.Literal.string(key), as_json(value, kind)]
    if has_lines:
        pairs += [exp.Literal.string("lines"), exp.func("json", exp.column(LINES))]
    empty = exp.Literal.string("{}")
    loose = exp.func("json_merge_patch", empty, exp.func("json_object", *pairs))
    if base is None:
        return loose
    own = _blank_to_null(base)
    is_object = exp.and_(
        exp.func("json_valid", own), exp.func("json_type", own).eq(exp.Literal.string("OBJECT"))
    )
    return exp.Case(
        ifs=[
            exp.If(this=own.is_(exp.null()), true=loose),
            exp.If(this=is_object, true=exp.func("json_merge_patch", loose, own)),
        ],
        default=base,
    )


def _first_filled(col: exp.Expr) -> exp.Expr:
    """The first non-empty value of a group's rows, in file order."""
    value = exp.func("arg_min", col, exp.column("row_number"))
    return exp.Filter(
        this=value, expression=exp.Where(this=_blank_to_null(col).is_(exp.null()).not_())
    )


def _grouped(cols: _Columns, m: InputMapping, source: exp.Select) -> exp.Select:
    """Rows sharing ``one_record_per`` as one record: each column's first non-empty value, and
    each row's line item (``lines``) collected in file order as ``_lines``."""
    assert m.one_record_per is not None
    key = _blank_to_null(cols.get(m.one_record_per, "one_record_per"))
    rn = exp.column("row_number")
    group = exp.func(
        "coalesce", key, exp.func("concat", exp.Literal.string("#"), exp.cast(rn, "varchar"))
    )
    first = [_first_filled(exp.column(c)).as_(c) for names in cols.by_name.values() for c in names]
    lines: list[exp.Expr] = []
    if m.lines:
        fields = {k: cols.source(s, f"lines.{k}") for k, s in m.lines.items()}
        item = exp.func(
            "json_object",
            *[
                p
                for k, v in fields.items()
                for p in (
                    exp.Literal.string(k),
                    as_json(
                        v, DECLARED.get(k, "number" if k in ("quantity", "price", "cost") else None)
                    ),
                )
            ],
        )
        filled = exp.or_(*[_blank_to_null(v).is_(exp.null()).not_() for v in fields.values()])
        aggregated = exp.ArrayAgg(this=exp.Order(this=item, expressions=[exp.Ordered(this=rn)]))
        ordered = exp.Filter(this=aggregated, expression=exp.Where(this=filled))
        lines = [
            exp.func(
                "coalesce",
                exp.cast(exp.func("to_json", ordered), "varchar"),
                exp.Literal.string("[]"),
            ).as_(LINES)
        ]
    return (
        exp.select(
            exp.func("min", rn).as_("row_number"), *first, *lines,
            exp.func("max", exp.column("_unreadable")).as_("_unreadable"),
            exp.func("max", exp.column("_extra")).as_("_extra"),
            exp.func("string_agg", exp.column("_record"), exp.Literal.string("\n")).as_("_record"),
        )
        .from_(source.subquery("_rows"))
        .group_by(group)
    )  # fmt: skip


def _packed_field(text: exp.Expr, key: str) -> exp.Expr:
    pattern = exp.Literal.string(f"(?:^|\\|){key}:([^|]*)")
    return _blank_to_null(
        exp.RegexpExtract(this=text, expression=pattern, group=exp.Literal.number(1))
    )


def _with_packed_lines(cols: _Columns, spec: LinesFromColumns, base: exp.Subquery) -> exp.Subquery:
    prefix = normalize(spec.columns_starting)
    packed = [n for n in cols.by_name if n.startswith(prefix)]
    for n in packed:
        cols.used.add(n)
    items: list[exp.Expr] = []
    for name in packed:
        text = _blank_to_null(cols.get(name, "lines_from_columns"))
        pairs: list[exp.Expr] = []
        for field_, key in spec.fields.items():
            if "/" in key:
                a, b = key.split("/", 1)
                num, den = (
                    exp.TryCast(this=_packed_field(text, k), to=exp.DataType.build("double"))
                    for k in (a, b)
                )
                value: exp.Expr = exp.func(
                    "to_json",
                    exp.func(
                        "round",
                        num / exp.func("nullif", den, exp.Literal.number(0)),
                        exp.Literal.number(2),
                    ),
                )
            else:
                kind = "number" if field_ in ("quantity", "price", "cost") else None
                value = as_json(_packed_field(text, key), kind)
            pairs += [exp.Literal.string(field_), value]
        items.append(exp.If(this=text.is_(exp.null()).not_(), true=exp.func("json_object", *pairs)))
    listed = exp.Array(expressions=items)
    keep = exp.Lambda(
        this=exp.column("x").is_(exp.null()).not_(), expressions=[exp.to_identifier("x")]
    )
    lines = exp.cast(exp.func("to_json", exp.func("list_filter", listed, keep)), "varchar")
    return exp.select("*", lines.as_(LINES)).from_(base).subquery("_with_lines")
