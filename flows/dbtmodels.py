"""What the project's dbt models document, read from their YAML without a warehouse: segments,
relations and their columns, the customer attributes flows may name.

The models are flowhouse's (its dbt package) and, in a store's own project
(:mod:`flowhouse.core.project`), the store's beside them. A store adds attributes with a model keyed
by ``customer_id`` that its ``dbt_project.yml`` lists in the var ``flowhouse_attribute_models``:
``core.customer_attributes`` joins it, and its documented columns (with their ``data_type``)
become ``customer.<column>`` for flows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flowhouse.core.errors import ConfigError, FileLocation
from flowhouse.core.paths import MODELS
from flowhouse.core.project import current
from flowhouse.core.yamlfile import load_yaml

#: The var of a store's dbt_project.yml that lists its attribute models.
ATTRIBUTE_MODELS_VAR = "flowhouse_attribute_models"


@dataclass(frozen=True)
class Model:
    """One documented model: its name, the YAML it is documented in, the folder of model files
    it belongs to, and its documentation."""

    name: str
    yml: Path
    folder: Path
    doc: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.doc.get("config") or {})

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.config.get("meta") or self.doc.get("meta") or {})

    @property
    def columns(self) -> list[dict[str, Any]]:
        return [c for c in self.doc.get("columns") or [] if isinstance(c, dict) and "name" in c]


def models(folders: Sequence[Path] | None = None) -> tuple[Model, ...]:
    """Every documented model of the project's model folders (the store's first)."""
    return _models(tuple(folders if folders is not None else current().models))


@cache
def _models(folders: tuple[Path, ...]) -> tuple[Model, ...]:
    found: list[Model] = []
    for folder in folders:
        if folder.is_dir():
            found += [m for yml in sorted(folder.rglob("*.yml")) for m in _models_in(yml, folder)]
    return tuple(found)


def _models_in(yml: Path, folder: Path) -> Iterator[Model]:
    doc = load_yaml(yml) or {}
    for model in doc.get("models") or [] if isinstance(doc, dict) else []:
        if isinstance(model, dict) and "name" in model:
            yield Model(str(model["name"]), yml, folder, model)


def segment_models(folders: Sequence[Path] | None = None) -> dict[str, str]:
    """Segment name -> model name: every model whose config has ``meta: {segment: <name>}`` (as
    the dbt macro ``segment_models`` finds them)."""
    return {str(m.meta["segment"]): m.name for m in models(folders) if m.meta.get("segment")}


def relations(folders: Sequence[Path] | None = None) -> dict[str, frozenset[str]]:
    """``schema.name`` -> documented columns of every model. The schema is the model's
    ``config.schema``, else its folder's ``+schema`` in the dbt project that holds it."""
    found: dict[str, frozenset[str]] = {}
    for m in models(folders):
        schema = m.config.get("schema") or _schema(
            _folder_config(_project_of(m.folder)), m.yml.relative_to(m.folder).parent
        )
        if schema:
            found.setdefault(f"{schema}.{m.name}", frozenset(c["name"] for c in m.columns))
    return found


def customer_attributes(folders: Sequence[Path] | None = None) -> dict[str, str]:
    """``core.customer_attributes``' columns and their documented ``data_type`` (``""`` when it
    gives none): flowhouse's, then those of the store's attribute models."""
    every = models(folders)
    base = next(m for m in every if m.name == "customer_attributes" and m.folder == MODELS)
    types = {c["name"]: _type(c) for c in base.columns}
    extra = set(attribute_models())
    for m in every:
        if m.name in extra:
            for column in (c for c in m.columns if c["name"] != "customer_id"):
                if column["name"] in types:
                    raise ConfigError(
                        f"attribute model {m.name} documents column {column['name']!r}, which"
                        " customer attributes already have",
                        FileLocation(str(m.yml), field=f"{m.name}.columns"),
                        expected="a name of the store's own (e.g. with a store_ prefix)",
                    )
                types[column["name"]] = _type(column)
    return types


def attribute_models() -> list[str]:
    """The store's attribute models: the var ``flowhouse_attribute_models`` of its project."""
    return [str(name) for name in project_vars().get(ATTRIBUTE_MODELS_VAR) or []]


def project_vars() -> dict[str, Any]:
    """The vars a store's own ``dbt_project.yml`` sets (global, and scoped to ``flowhouse:``);
    nothing outside a store's project."""
    project = current()
    if not project.own:
        return {}
    given = dict(_project_doc(project.dbt_dir).get("vars") or {})
    scoped = given.pop("flowhouse", None)
    return given | (scoped if isinstance(scoped, dict) else {})


def _type(column: dict[str, Any]) -> str:
    return str(column.get("data_type", "")).lower()


def _project_of(folder: Path) -> Path:
    """The dbt project a model folder belongs to: the nearest folder above with dbt_project.yml."""
    return next(p for p in folder.parents if (p / "dbt_project.yml").is_file())


@cache
def _project_doc(dbt_dir: Path) -> dict[str, Any]:
    return dict(load_yaml(dbt_dir / "dbt_project.yml") or {})


def _folder_config(dbt_dir: Path) -> dict[str, Any]:
    doc = _project_doc(dbt_dir)
    return dict((doc.get("models") or {}).get(doc.get("name"), {}) or {})


def _schema(config: dict[str, Any], folder: Path) -> str | None:
    """The innermost ``+schema`` configured on the way down to ``folder``."""
    schema = config.get("+schema")
    for part in folder.parts:
        config = config.get(part) or {}
        schema = config.get("+schema", schema)
    return str(schema) if schema else None
