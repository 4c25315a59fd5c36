"""Config as code: providers, models, routes and teams as one YAML document.

`import_config` upserts by name inside one transaction: an invalid document changes
nothing, and a second import of the same document changes nothing either.
`export_config` produces a document that re-imports to the same state.

The schema (docs/config.md) is the field tables in schema.py, one row per key, read by
one generic parser (parse.py) and one generic exporter (exporter.py) so that import and
export cannot drift apart. Every error names where it is, e.g.
`routes[chat-default].targets[1].model`.

Modules: schema (field tables, value checks, ConfigError), parse (document ->
ConfigSpec, no database), importer (import_config, --prune), report (ImportReport),
exporter (export_config), yaml_io (YAML text in and out).
"""

from __future__ import annotations

from .exporter import export_config
from .importer import import_config
from .parse import ConfigSpec, parse_config
from .report import Action, ImportReport
from .schema import ConfigError
from .yaml_io import dump_config, load_config_text

__all__ = [
    "Action",
    "ConfigError",
    "ConfigSpec",
    "ImportReport",
    "dump_config",
    "export_config",
    "import_config",
    "load_config_text",
    "parse_config",
]
