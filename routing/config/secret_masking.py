"""Secrets in config documents: masked on export, kept on import of a masked export.

Export (without --include-secrets): a provider's literal `api_key` and the values of its
secret-named custom headers (providers.secrets.SECRET_HEADER: Authorization, X-Api-Key,
...Token, ...) are written as `[masked]`; references (env:, file:, vault:...) are
written as they are, they are not secrets. With include_secrets, the values themselves.

Import: `[masked]` means "the value stored now": an existing provider keeps its key, a
masked header keeps the stored header's value. Where nothing is stored (a new provider,
a header it does not have) the import fails with the item's path: a mask is never
written over a secret, and never stored as one (Provider.clean refuses it too).
"""

from __future__ import annotations

from typing import Any

from providers.models import Provider
from providers.secret_keys import UndecryptableSecret
from providers.secrets import MASK, is_secret_header, mask, mask_options

from .parse import Entry
from .schema import ConfigError, Errors


def export_key(provider: Provider, value: Any, include_secrets: bool) -> Any:
    """The api_key as exported (None: left out)."""
    if isinstance(value, UndecryptableSecret):
        if include_secrets:
            raise ConfigError(f"providers[{provider.name}].api_key",
                              f"the stored key cannot be decrypted ({value.reason}): configure the key that "
                              "wrote it (CRYPTOGRAPHY_KEY_PREVIOUS) or export without --include-secrets")
        return MASK  # a key is stored: importing this document keeps it
    if value in ("", None):
        return None
    return value if include_secrets else mask(value)


def export_options(options: Any, include_secrets: bool) -> Any:
    return options if include_secrets else mask_options(options)


def unmask_provider(entry: Entry, stored: Provider | None, errors: Errors) -> bool:
    """Replace `[masked]` in a provider entry by what is stored (in place). False, with
    the errors added, when there is nothing stored to keep."""
    ok = True
    values = entry.values
    if values.get("api_key") == MASK:
        if stored is not None and stored.pk is not None and (stored.api_key or isinstance(stored.api_key, UndecryptableSecret)):
            del values["api_key"]  # absent = keep the stored key
        else:
            errors.add(f"{entry.path}.api_key",
                       f"{MASK}: the key was masked in the export this comes from and no key is stored for "
                       f"'{entry.name}' here; write the key or a reference (env:VARNAME, file:/path), or run "
                       "gateway_export --include-secrets")
            ok = False
    options = values.get("options")
    headers = options.get("headers") if isinstance(options, dict) else None
    if isinstance(headers, dict) and MASK in headers.values():
        stored_headers = (stored.options or {}).get("headers", {}) if stored is not None and stored.pk else {}
        merged = {}
        for name, value in headers.items():
            if value == MASK and is_secret_header(name):
                if isinstance(stored_headers, dict) and isinstance(stored_headers.get(name), str):
                    value = stored_headers[name]
                else:
                    errors.add(f"{entry.path}.options.headers.{name}",
                               f"{MASK}: the value was masked in the export this comes from and '{entry.name}' "
                               "has no such header stored here; write the value or a reference (env:VARNAME, "
                               "file:/path)")
                    ok = False
            merged[name] = value
        values["options"] = {**options, "headers": merged}
    return ok
