"""Types of the flows' parameters, so that the Prefect UI's Run form offers choices, not blanks.

- `DatasetChoice`: a dataset name (or None: the configured default). The form offers the bundled
  datasets as a list to pick from (`flows.deploy` adds the datasets a served deployment's
  configuration declares), or a configured `[sources.NAME]` typed in; the value is validated where
  it is resolved (`data.datasets.resolve_source`, naming the known datasets).
- `RunOverrides`: nested settings for one run, typed: one optional section per section of the
  configuration (`model`, `evaluation`, `publish`, ...) with each of its settings optional and
  described as in `flowcast.config` (and the top-level settings such as `shared`), instead of a
  raw dict. Only what is given applies
  (`overrides_dict`); the full configuration validates the result, so the bounds of every setting
  hold as they do in flowcast.toml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from flowcast.config import Settings
from flowcast.data.datasets import BUNDLED_DATASETS

DATASET_NAMES: list[str] = list(BUNDLED_DATASETS)
# the form: a list to pick a bundled dataset from, or a name typed in (a [sources.NAME] of the
# configuration: a deployment made by `prefect deploy` does not know them, and the server checks
# a run's parameters against this schema), or empty (the configured default)
DatasetChoice = Annotated[str | None, WithJsonSchema({"anyOf": [
    {"type": "string", "enum": DATASET_NAMES, "title": "bundled dataset"},
    {"type": "string", "title": "configured dataset"},
    {"type": "null"},
]})]

# what a run may override: every setting of the configuration but those that are flow parameters
# of their own (home, dataset, source, horizon)
NOT_OVERRIDES = ("home", "dataset", "source", "horizon")


def _partial(section: type[BaseModel], label: str) -> type[BaseModel]:
    """`section` with every setting optional (None: not given), descriptions kept."""
    fields: dict[str, Any] = {
        name: (info.annotation | None,  # type: ignore[operator]
               Field(None, title=name, description=info.description or f"{label}.{name} (empty: as configured)"))
        for name, info in section.model_fields.items()
    }
    return create_model(f"{section.__name__}Override", __config__=ConfigDict(extra="forbid"), **fields)


def _overrides_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, info in Settings.model_fields.items():
        if name in NOT_OVERRIDES:
            continue
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):  # a [section]: its settings, each optional
            doc = (kind.__doc__ or "").strip().splitlines()[0] if kind.__doc__ else "settings"
            fields[name] = (_partial(kind, name) | None, Field(None, description=f"[{name}] {doc}", title=name))
        else:
            fields[name] = (kind | None, Field(None, title=name,  # type: ignore[operator]
                                               description=info.description or f"{name} (empty: as configured)"))
    return create_model("RunOverrides", __config__=ConfigDict(extra="forbid"),
                        __doc__="Settings for this run only, by section (what is left empty keeps its configured value).",
                        **fields)


if TYPE_CHECKING:
    RunOverrides = BaseModel
else:
    RunOverrides = _overrides_model()


def overrides_dict(overrides: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    """The settings a RunOverrides (or a plain nested dict, as the CLI and tests pass) gives."""
    if overrides is None:
        return {}
    if isinstance(overrides, BaseModel):
        return overrides.model_dump(exclude_unset=True)
    return dict(overrides)
