"""YAML text <-> plain data: a strict loader and a stable, readable dumper."""

from __future__ import annotations

from typing import Any

import yaml

from .schema import SECTIONS, ConfigError


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (a silent last-one-wins hides typos) and
    keeps date-like scalars as strings."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)):
            continue  # unhashable keys are rejected later as unknown keys
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_config_text(text: str) -> Any:
    """Parse YAML; syntax errors become ConfigError (position only: the offending
    line is not quoted back, it may hold a secret)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError("", f"invalid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML: {type(exc).__name__}") from None


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, multi-line strings as `|` blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)  # indent lists under their key


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list_representer(dumper: yaml.SafeDumper, value: list) -> yaml.SequenceNode:
    # Short lists of words (retry_on) read best on one line.
    flow = bool(value) and all(isinstance(v, str) and "\n" not in v for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow or None)


_Dumper.add_representer(str, _str_representer)
_Dumper.add_representer(list, _list_representer)

HEADER = (
    "# LLM gateway configuration (schema: docs/config.md).\n"
    "# Apply with: python manage.py gateway_import FILE.yaml\n"
    "# Secrets show as [masked] (unless exported with --include-secrets); on import, [masked]\n"
    "# or an absent api_key keeps the stored secret.\n"
)


def dump_config(data: dict) -> str:
    """YAML text for export_config() output: stable, one blank line between sections."""
    sections = [
        yaml.dump({key: data[key]}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        for key in SECTIONS
        if key in data
    ]
    return HEADER + "\n" + "\n".join(sections)
