"""Secret references: a provider's key (or a secret header value) that names where the
secret is instead of holding it (docs/security/secrets.md).

    env:OPENAI_API_KEY              the gateway's environment variable
    file:/run/secrets/openai        a file (e.g. a Kubernetes-mounted secret)
    vault:gateway/openai#api_key    a registered backend (providers.secret_backends)

Resolved when the routing catalogue is loaded or refreshed (providers.catalog, in a
worker thread, every GATEWAY_CONFIG_TTL_S at most) and when a provider is saved, never
per request. Every value read is registered with providers.secrets for scrubbing.

Files: an absolute path, at most 64 KiB of UTF-8 text, trailing line breaks removed.
The file is re-read when it changes (device, inode, size or modification time of the
path, symlinks followed: Kubernetes swaps the `..data` symlink when it rotates a
mounted secret); otherwise its last contents are reused.

Anything else is a literal secret -- including values with a colon whose first part is
not a known scheme (Bedrock's ACCESS_KEY_ID:SECRET, user:password). `vault:` is always
read as a reference, so that a forgotten backend is an error, not a key sent upstream.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from dataclasses import dataclass

from .secret_backends import SecretBackendConfigError, SecretBackendError, backends, fetch
from .secrets import remember

ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
SCHEME = re.compile(r"^([a-z][a-z0-9_-]*):(.*)$", re.DOTALL)
BUILTIN = ("env", "file")
RESERVED = ("vault",)  # read as references even when no backend is registered for them
MAX_FILE_BYTES = 64 * 1024


class SecretReferenceError(Exception):
    """A reference that cannot be resolved. The message names the reference (and why),
    never a secret."""


@dataclass(frozen=True, slots=True)
class Resolved:
    value: str | None  # the secret; None when there is none or it could not be read
    ref: str | None  # the reference, when the stored value is one
    error: str | None = None  # why a reference gave no value


def schemes() -> set[str]:
    try:
        registered = set(backends())
    except SecretBackendConfigError:
        registered = set()
    return {*BUILTIN, *RESERVED, *registered}


def scheme_of(value: str | None) -> str | None:
    """The reference scheme of a stored value, or None for a literal secret."""
    if not value:
        return None
    match = SCHEME.match(value)
    if match is None:
        return None
    scheme = match.group(1)
    return scheme if scheme in BUILTIN or scheme in RESERVED or scheme in schemes() else None


def is_reference(value: str | None) -> bool:
    return scheme_of(value) is not None


def check(value: str | None) -> str | None:
    """What is wrong with a stored value, for a clear error on save (admin, import,
    API), or None. `env:` is only checked for its form: the gateway may run with
    another environment than the process saving it. `file:` and backend references
    are read (so a missing file or secret is caught now, not at the first request)."""
    scheme = scheme_of(value)
    if scheme is None:
        if value and value.startswith("env:"):
            return "an environment reference looks like env:VARNAME"
        return None
    if scheme == "env":
        return None if ENV_REF.match(value) else "an environment reference looks like env:VARNAME"
    try:
        resolve(value)
    except SecretReferenceError as exc:
        return str(exc)
    return None


def resolve(value: str) -> str | None:
    """The secret a stored value stands for: the value itself when it is literal, None
    for an unset environment variable. Raises SecretReferenceError."""
    scheme = scheme_of(value)
    if scheme is None:
        return value or None
    rest = value[len(scheme) + 1:]
    if scheme == "env":
        if not ENV_REF.match(value):
            raise SecretReferenceError(f"{value}: an environment reference looks like env:VARNAME")
        secret = os.environ.get(rest) or None
        remember(secret)
        return secret
    if scheme == "file":
        return read_file(rest)
    try:
        registered = backends()
    except SecretBackendConfigError as exc:
        raise SecretReferenceError(str(exc)) from None
    backend = registered.get(scheme)
    if backend is None:
        raise SecretReferenceError(f"{scheme}: no secret backend is registered for this scheme "
                                   f"(GATEWAY_SECRET_BACKENDS; docs/security/secrets.md)")
    if problem := backend.check_reference(rest):
        raise SecretReferenceError(f"{value}: {problem}")
    try:
        return fetch(backend, rest)
    except SecretBackendError as exc:
        raise SecretReferenceError(str(exc)) from None


def resolve_safely(value: str | None) -> Resolved:
    """resolve() for the catalogue: never raises, says why there is no value."""
    if not value:
        return Resolved(None, None)
    ref = value if is_reference(value) else None
    try:
        secret = resolve(value)
    except SecretReferenceError as exc:
        return Resolved(None, ref, str(exc))
    if secret is None and ref is not None:
        return Resolved(None, ref, f"{ref} is not set")
    return Resolved(secret, ref)


# --- files ----------------------------------------------------------------------------

_files: dict[str, tuple[tuple[int, int, int, int], str]] = {}
_files_lock = threading.Lock()


def read_file(path: str) -> str:
    """The secret in a file (see the module docstring). Raises SecretReferenceError."""
    where = f"file:{path}"
    if not path or not os.path.isabs(path):
        raise SecretReferenceError(f"{where}: a file reference needs an absolute path, e.g. file:/run/secrets/openai")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SecretReferenceError(f"{where}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecretReferenceError(f"{where}: not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise SecretReferenceError(f"{where}: larger than {MAX_FILE_BYTES // 1024} KiB, not a secret file")
        version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cached = _files.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            raw = os.read(fd, MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SecretReferenceError(f"{where}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretReferenceError(f"{where}: not UTF-8 text") from None
    text = text.rstrip("\r\n")
    if not text:
        raise SecretReferenceError(f"{where}: the file is empty")
    remember(text)
    with _files_lock:
        _files[path] = (version, text)
    return text


def forget_files_for_tests() -> None:
    with _files_lock:
        _files.clear()
