"""Typed dataclass configs from YAML and the command line, for every command (`distill`, `train`, `demo`, `bench`).

Precedence: dataclass defaults < the YAML file (`--config`) < options typed on the command line. The parsing is
transformers' `HfArgumentParser` (one `--field` option per dataclass field, with its `metadata["help"]`); the only
thing added here is making options default to SUPPRESS, so that what the user did not type does not override the
YAML file.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from kidsql.errors import KidsqlError

T = TypeVar("T")


def config_field(text: str, default: Any = None) -> Any:
    """A dataclass field with its --help text (HfArgumentParser reads `metadata["help"]`)."""
    return field(default=default, metadata={"help": text})


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                            fields: Any = None) -> None:
    """`--config` plus one option per field of `cls` (`fields`, in their order; default all) but `skip`,
    HfArgumentParser's rules (`--a_b`, `--a-b`)."""
    parser.add_argument("--config", default=None, help="YAML file of options (command-line options override it)")
    add_fields_arguments(parser, [f for f in fields or dataclasses.fields(cls) if f.name not in skip], cls)


def add_fields_arguments(parser: Any, fields: Any, cls: type) -> None:
    """One option per dataclass field in `fields` (of `cls`) on `parser` (a parser or an argument group),
    defaulting to SUPPRESS so that what the user did not type does not override the YAML file."""
    from transformers import HfArgumentParser

    fields = list(fields)
    hints = get_type_hints(cls)
    names = set()
    for f in fields:
        f = copy.copy(f)  # HfArgumentParser rewrites field.type in place; keep the class's fields intact
        f.type = hints[f.name]
        HfArgumentParser._parse_dataclass_field(parser, f)
        names.add(f.name)
    for action in parser._actions:
        if action.dest in names:
            action.default = argparse.SUPPRESS
            action.required = False


def given_fields(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` present in a namespace parsed by a parser from `add_dataclass_arguments`."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def read_options(path: str | Path | None) -> dict[str, Any]:
    """The `key: value` mapping of a YAML options file ({} for None); a bad file is a one-line error naming it."""
    import yaml

    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise KidsqlError(f"{p}: config file not found; pass an existing YAML file to --config")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise KidsqlError(f"{p}: not a text file (not UTF-8); pass a YAML file of option: value lines") from None
    except yaml.YAMLError as err:
        raise KidsqlError(f"{p}: not valid YAML ({str(err).splitlines()[0]}); fix the syntax") from err
    if not isinstance(loaded, dict):
        raise KidsqlError(f"{p}: expected a mapping of option: value; write one 'key: value' per line")
    return {str(k).replace("-", "_"): v for k, v in loaded.items()}


def build_dataclass(cls: type[T], values: dict[str, Any], source: str | Path | None = None) -> T:
    """`cls(**values)`; unknown keys are a one-line error naming `source` (the YAML file)."""
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise KidsqlError(f"{source or 'config'}: unknown option(s) {', '.join(unknown)}; see --help for the fields")
    return cls(**values)


def load_dataclass(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Defaults < YAML file at `path` < `overrides`; unknown keys are a one-line error naming the file."""
    values = read_options(path)
    values.update(overrides)
    return build_dataclass(cls, values, path)
