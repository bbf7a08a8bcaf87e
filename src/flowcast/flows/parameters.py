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

import json
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from flowcast.config import Settings
from flowcast.data.datasets import BUNDLED_DATASETS
from flowcast.redaction import HIDDEN
from flowcast.source_secrets import (
    NOT_SECRET,
    OPTIONS,
    SECRET_OPTION_BUT_TOKEN,
    TOKEN_MODES,
    TOKEN_OPTION,
    VISIBLE_LOCATION_SECRET,
    VISIBLE_SECRET,
    is_location,
)

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
# what the Run form labels the overrides group with (the model's title; its class name read `RunOverrides`)
OVERRIDES_TITLE = "Settings to override"


def _partial(section: type[BaseModel], label: str) -> type[BaseModel]:
    """`section` with every setting optional (None: not given), descriptions kept."""
    fields: dict[str, Any] = {
        name: (info.annotation | None,  # type: ignore[operator]
               Field(None, title=name, description=info.description or f"{label}.{name} (empty: as configured)"))
        for name, info in section.model_fields.items()
    }
    # titled as a person reads it: the Run form labels a section's choice with its title, which was the class name
    # ('ModelConfigOverride', look42)
    return create_model(f"{section.__name__}Override", __config__=ConfigDict(extra="forbid", title=f"{label} settings"),
                        **fields)


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
    # the Run form labelled the overrides group with its title, the class name 'RunOverrides' (look42, ui42's notes)
    return create_model("RunOverrides", __config__=ConfigDict(extra="forbid", title=OVERRIDES_TITLE),
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


# The Prefect UI's Run form and a parameter `X | None = None`: pydantic writes it `anyOf: [X, {type: null}]` with
# `default: null`, and the form opens such a field on its null choice, which reads 'Property is type "None"' and has
# nothing to fill in (every optional parameter of the three flows, session 35). Without the null default it opens on
# the first choice, X, and sends nothing while X is left empty; the null choice stays last (the server checks a
# deployment's parameters and an API caller's against the schema: an explicit null, such as an override's
# `early_stopping_patience = None`, must still pass). No annotation removes a default that pydantic writes for
# `= None`, so the deployments' schemas are rewritten here (`form_schema`).
ON_OFF: list[dict[str, Any]] = [
    # a bool that may be left empty (None: as configured, or as the run decides) is a list to pick from: the form's
    # toggle sends false the moment it is shown. Prefect reads 'on' and 'off' as the flow's True and False; an API
    # caller's true/false still validates (the second choice)
    {"type": "string", "enum": ["on", "off"], "title": "on or off"},
    {"type": "boolean", "title": "true or false"},
]


def _form_property(prop: dict[str, Any], boxed: set[str]) -> dict[str, Any]:
    """One property of a parameter schema as the Run form fills it in: an optional one (`default: null`) loses
    the null default and opens on its input, left empty unless filled. `boxed`: the models (definitions) that are
    a JSON box instead of their fields."""
    if "default" not in prop or prop["default"] is not None:
        return prop
    out = {k: v for k, v in prop.items() if k not in ("default", "anyOf", *_TYPE_KEYS)}
    choices = prop.get("anyOf") or [{k: v for k, v in prop.items() if k in _TYPE_KEYS}]
    typed = [c for c in choices if c.get("type") != "null"]
    if len(typed) == 1 and typed[0].get("type") == "boolean":
        typed = [dict(c) for c in ON_OFF]
    elif len(typed) == 1 and typed[0].get("$ref", "").rsplit("/", 1)[-1] in boxed:
        # a model with required fields (SourceConfig): as its fields, the form fills the others with their defaults
        # and sends them, and a source without its path failed the form's check. An empty JSON box is not sent
        typed = [{"type": "object", "title": "JSON", **NO_SECRET_IN_PATH}]
    return {**out, "anyOf": typed + [c for c in choices if c.get("type") == "null"]}


# what the Run form labels a choice of several with where it has no title: Prefect's UI wrote the JSON type's Python
# name, and `as_of` read `date-time | date | str | None`, `horizon` `int | None`, `quarantine_threshold` `float | None`
# (ui44); a list is `list` already, a null choice `None` (the explicit None, last)
CHOICE_TITLES = {"enum": "choice", "date-time": "date and time", "date": "date", "string": "text",
                 "integer": "whole number", "number": "number"}


def _titled(prop: dict[str, Any]) -> dict[str, Any]:
    """`prop` with each of its choices (`anyOf`) that has no title titled in words (`CHOICE_TITLES`): a list to pick
    from `choice`, else by its format or type."""
    if "anyOf" not in prop:
        return prop
    return {**prop, "anyOf": [
        {**c, "title": CHOICE_TITLES[key]} if "title" not in c and (
            key := "enum" if "enum" in c else c.get("format") or c.get("type")) in CHOICE_TITLES else c
        for c in prop["anyOf"]]}


# A URL that shows its password or a token, in the Run form's text or a JSON box's `path`, is refused by the server,
# which stores nothing of the run (it stores a run's parameters as sent, before any flowcast code runs, and shows
# them: `source_secrets`); the run names the URL with its secrets `***`, and a worker reads the URL its configuration
# declares. The pattern is a definition referred to by name: the server's 409, which the UI shows in a toast, writes
# the schema the value failed, and `VISIBLE_SECRET` written out there was a wall of regex (ui51); by name it reads
# `'https://u:pw@h' should not be valid under {'$ref': '#/definitions/URLShowingAPasswordOrToken'}`
# Text longer than `MAX_CHECKED_TEXT` characters is refused whole, its length checked first (`anyOf` stops at the first
# schema that holds): the pattern's search grows with the square of a text's length (`'x://:' * 60000`, 300,000
# characters, took 120 s in Python's `re` as the server checked a run's parameters, fixF52), and reads no longer one
SECRET_URL_NAME = "URLShowingAPasswordOrToken"
MAX_CHECKED_TEXT = 4096
SECRET_URL: dict[str, Any] = {"type": "string",
                              "anyOf": [{"minLength": MAX_CHECKED_TEXT + 1}, {"pattern": VISIBLE_SECRET}]}
_SECRET_URL_REF = {"$ref": f"#/definitions/{SECRET_URL_NAME}"}
NO_VISIBLE_SECRET: dict[str, Any] = {"not": _SECRET_URL_REF}
# a location's text (a source's `path`, `store.url`, `shared`: `source_secrets.is_location`), which refuses a secret's
# `name=value` anywhere in a URL's or a DSN's text too (`VISIBLE_LOCATION_SECRET`, secrets53)
SECRET_LOCATION_NAME = "LocationShowingAPasswordOrToken"
SECRET_LOCATION: dict[str, Any] = {"type": "string",
                                   "anyOf": [{"minLength": MAX_CHECKED_TEXT + 1}, {"pattern": VISIBLE_LOCATION_SECRET}]}
_SECRET_LOCATION_REF = {"$ref": f"#/definitions/{SECRET_LOCATION_NAME}"}
NO_VISIBLE_LOCATION_SECRET: dict[str, Any] = {"not": _SECRET_LOCATION_REF}
NO_SECRET_IN_PATH: dict[str, Any] = {"not": {"required": ["path"], "properties": {"path": _SECRET_LOCATION_REF}}}
# fsspec options (a setting named `*options`: `shared_options`, `store.storage_options`) as a run's parameters may hold
# them (`source_secrets.stored_options`), at any depth (`client_kwargs`): no text shows a URL's secret, and a value whose
# name says it is a secret (`SECRET_OPTION`: `key`, `secret`, `aws_secret_access_key`) holds no text nor number but
# `***`, an empty one and `anon` (gcsfs's `token`: its modes too, `TOKEN_VALUE`), in its lists and dicts too
# (`SECRET_VALUE`: `source_secrets.hidden`). The
# server's 409 names the option (`Validation failed for field 'overrides.shared_options.secret'`)
SECRET_FREE_OPTIONS_NAME = "SecretFreeOptions"
_OPTIONS_REF = {"$ref": f"#/definitions/{SECRET_FREE_OPTIONS_NAME}"}
SECRET_VALUE_NAME = "SecretOptionValue"
_SECRET_REF = {"$ref": f"#/definitions/{SECRET_VALUE_NAME}"}


def _secret_value(shown: tuple[str, ...]) -> dict[str, Any]:
    """The schema of a secret option's value (`source_secrets.hidden`): no text but `***`, an empty one and `shown`,
    no number; within its lists and dicts, `SECRET_VALUE`."""
    return {"not": {"anyOf": [{"type": "string", "not": {"enum": [HIDDEN, "", *shown]}}, {"type": "number"}]},
            "additionalProperties": _SECRET_REF, "items": _SECRET_REF}


SECRET_VALUE = _secret_value(NOT_SECRET)
# gcsfs's `token`, which may name how to authenticate (`TOKEN_MODES`: `google_default`, `anon`)
TOKEN_VALUE_NAME = "TokenOptionValue"
_TOKEN_REF = {"$ref": f"#/definitions/{TOKEN_VALUE_NAME}"}
TOKEN_VALUE = _secret_value(TOKEN_MODES)
_OPTION_KEYS: dict[str, Any] = {"patternProperties": {SECRET_OPTION_BUT_TOKEN: _SECRET_REF, TOKEN_OPTION: _TOKEN_REF,
                                                      "": _OPTIONS_REF}}
SECRET_FREE_OPTIONS: dict[str, Any] = {**NO_VISIBLE_SECRET, **_OPTION_KEYS,
                                        "items": _OPTIONS_REF}
SECRET_FREE_NOTE = (" A URL's password or token is written *** (https://u:***@h/x.csv?token=***): the worker reads the "
                    "URL its configuration declares ([sources.NAME] path); a URL that shows one is refused, as is "
                    f"text over {MAX_CHECKED_TEXT} characters.")


def _text(choice: dict[str, Any]) -> bool:
    """Whether `choice` (a property's schema, or one of its `anyOf`) is free text: a string, not a choice or a date."""
    return choice.get("type") == "string" and not {"enum", "format", "const"} & choice.keys()


def _secret_free(prop: dict[str, Any], name: str = "") -> dict[str, Any]:
    """`prop` (the property `name`) whose free text refuses a URL that shows a secret (`NO_VISIBLE_SECRET`; a
    location's, a secret's `name=value` in a URL or a DSN too: `NO_VISIBLE_LOCATION_SECRET`), and whose
    object, where it is fsspec options (`*options`), one that shows a secret (`SECRET_FREE_OPTIONS`); one that takes
    a source's JSON box (`NO_SECRET_IN_PATH`) says so in its description."""
    options = name.lower().endswith(OPTIONS)
    refused = NO_VISIBLE_LOCATION_SECRET if is_location(name) else NO_VISIBLE_SECRET

    def checked(choice: dict[str, Any]) -> dict[str, Any]:
        if _text(choice):
            return {**choice, **refused}
        return {**choice, **_OPTION_KEYS} if options and choice.get("type") == "object" else choice

    choices = prop.get("anyOf")
    if choices is None:
        return checked(prop)
    out = {**prop, "anyOf": [checked(c) for c in choices]}
    said = str(prop.get("description") or "")
    if any(c.get("not") == NO_SECRET_IN_PATH["not"] for c in choices) and SECRET_FREE_NOTE not in said:
        out["description"] = said + SECRET_FREE_NOTE
    return out


_TYPE_KEYS = ("type", "enum", "items", "format", "$ref", "additionalProperties", "properties", "minimum", "maximum",
              "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "required", "const",
              "prefixItems", "minItems", "maxItems")


def form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter schema (`prefect.utilities.callables.parameter_schema(...).model_dump()`) as a deployment's Run
    form should show it: every optional parameter, and every optional setting of the models it refers to
    (RunOverrides' sections, SourceConfig), an input to fill in or leave empty (`_form_property`), each of its
    choices labelled in words (`_titled`), its free text and fsspec options refusing a secret shown (`_secret_free`)."""
    definitions = schema.get("definitions") or {}
    boxed = {name for name, d in definitions.items() if d.get("required")}
    out = {**schema, "properties": {k: _secret_free(_titled(_form_property(v, boxed)), k)
                                    for k, v in (schema.get("properties") or {}).items()}}
    if definitions:
        out["definitions"] = {
            name: {**d, "properties": {k: _secret_free(_titled(_form_property(v, boxed)), k)
                                       for k, v in d["properties"].items()}}
            if "properties" in d else d for name, d in definitions.items()}
    for ref, name, definition in ((_OPTIONS_REF, SECRET_FREE_OPTIONS_NAME, SECRET_FREE_OPTIONS),
                                  (_SECRET_REF, SECRET_VALUE_NAME, SECRET_VALUE),  # the options refer to these
                                  (_TOKEN_REF, TOKEN_VALUE_NAME, TOKEN_VALUE),
                                  (_SECRET_URL_REF, SECRET_URL_NAME, SECRET_URL),
                                  (_SECRET_LOCATION_REF, SECRET_LOCATION_NAME, SECRET_LOCATION)):
        if ref["$ref"] in json.dumps(out):
            out["definitions"] = {**out.get("definitions", {}), name: definition}
    return out
