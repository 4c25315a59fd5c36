"""Encryption of stored secrets with key rotation: read with the current or a previous
key, write with the current one (docs/security/secrets.md, "Rotating the encryption key").

django-cryptography (the `encrypt()` fields) stores a value as

    version 0x80 | timestamp (8) | IV (16) | AES-256-CBC(pickle(value)) | HMAC-SHA256

with the AES key derived from CRYPTOGRAPHY_KEY (PBKDF2-SHA256, CRYPTOGRAPHY_SALT,
30,000 rounds; SECRET_KEY when CRYPTOGRAPHY_KEY is unset) -- but the HMAC keyed with
SECRET_KEY itself, whatever CRYPTOGRAPHY_KEY is. So a new SECRET_KEY made every stored
provider key unreadable even with CRYPTOGRAPHY_KEY set, and it has no notion of a
previous key. `RotatingEncryptedTextField` keeps that field (same column, same
migration state, same token layout) and changes where the keys come from:

* Written with an explicit CRYPTOGRAPHY_KEY: version byte 0x81, the HMAC keyed with a
  key derived from CRYPTOGRAPHY_KEY (HKDF-SHA256 over its AES key): SECRET_KEY plays no
  part, and the HMAC says which key wrote the value.
* Written without one (the key is SECRET_KEY), or with GATEWAY_SECRETS_LEGACY_FORMAT
  (during a rolling upgrade): exactly django-cryptography's 0x80 format, which older
  releases read.
* Read: 0x81 with the current key or any of CRYPTOGRAPHY_KEY_PREVIOUS; 0x80 with the
  HMAC of SECRET_KEY, SECRET_KEY_FALLBACKS or any previous key, decrypted with the
  current, a previous, SECRET_KEY's or a fallback's derived key (the payload must
  unpickle to a string -- a wrong AES key is detected, never returned as garbage).
* A value no configured key reads is not an exception in the middle of a queryset:
  it loads as `UndecryptableSecret` (an empty, falsy string carrying the reason).
  Saving it is refused (the field will not write it, Provider.clean says why),
  the catalogue reports that provider as failing, and `manage.py reencrypt_secrets`
  names the row. Nothing silently reads garbage or overwrites the stored value.

The payload stays pickle (the format django-cryptography reads); it is unpickled
with an unpickler that loads no classes at all.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.db import models
from django.utils.encoding import force_bytes
from django_cryptography.core.signing import BadSignature, FernetSigner
from django_cryptography.fields import EncryptedMixin
from django_cryptography.utils.crypto import FernetBytes, InvalidToken

LEGACY = b"\x80"  # django-cryptography's format: HMAC keyed with SECRET_KEY
ROTATING = b"\x81"  # this module's: HMAC keyed from CRYPTOGRAPHY_KEY
_SIGNING_INFO = b"llm-gateway stored secrets: HMAC key"
_PBKDF2_ROUNDS = 30000  # django_cryptography.conf.CryptographyConf


class UndecryptableSecret(str):
    """A stored value no configured key decrypts: reads as "" (falsy), carries `reason`.
    Never written back (RotatingEncryptedTextField refuses it)."""

    reason: str

    def __new__(cls, reason: str) -> "UndecryptableSecret":
        value = super().__new__(cls, "")
        value.reason = reason
        return value

    def __repr__(self) -> str:
        return f"UndecryptableSecret({self.reason!r})"


class SecretDecryptionError(ValueError):
    pass


def fingerprint(aes_key: bytes) -> str:
    """A short, non-reversible name for a key (shown by reencrypt_secrets --check)."""
    return hashlib.sha256(b"fingerprint:" + aes_key).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class Key:
    label: str  # "current", "previous #1", "SECRET_KEY", "SECRET_KEY_FALLBACKS #1"
    aes: bytes
    mac: bytes  # the HMAC key of the ROTATING format (derived from `aes`)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.aes)


def _key(label: str, aes: bytes) -> Key:
    return Key(label, aes, _mac_key(aes))


@dataclass(frozen=True, slots=True)
class Decrypted:
    value: str
    key: Key  # the key that decrypted it
    version: bytes  # LEGACY or ROTATING
    legacy_mac: bytes = b""  # LEGACY: the SECRET_KEY (or fallback) its HMAC is keyed with

    @property
    def current(self) -> bool:
        """Written in the format and with the keys a write uses now."""
        ring = keyring()
        if self.version != ring.write_version or self.key.aes != ring.current.aes:
            return False
        return self.version == ROTATING or self.legacy_mac == ring.secret_key


def _derive(material: Any) -> bytes:
    """django-cryptography's derivation of an AES key from a configured key. The
    value AppConf left in settings.CRYPTOGRAPHY_KEY is already derived (32 bytes)."""
    if isinstance(material, bytes) and len(material) == 32:
        return material
    return _pbkdf2(force_bytes(material), force_bytes(settings.CRYPTOGRAPHY_SALT))


_derived: dict[tuple[bytes, bytes], bytes] = {}


def _pbkdf2(material: bytes, salt: bytes) -> bytes:
    key = (material, salt)
    if key not in _derived:  # ~15 ms each: once per key and process
        _derived[key] = PBKDF2HMAC(hashes.SHA256(), 32, salt, _PBKDF2_ROUNDS).derive(material)
    return _derived[key]


def _mac_key(aes: bytes) -> bytes:
    return HKDFExpand(hashes.SHA256(), 32, _SIGNING_INFO).derive(aes)


class _Signer(FernetSigner):
    def __init__(self, key: bytes, version: bytes) -> None:
        super().__init__(key, "sha256")
        self.version = version


NOT_CONFIGURED = ("written with an encryption key that is not configured (neither CRYPTOGRAPHY_KEY nor any of "
                  "CRYPTOGRAPHY_KEY_PREVIOUS)")


class KeyRing:
    """The keys of one configuration: `current` writes; `reading` decrypt (current
    first); `legacy_macs` verify django-cryptography's 0x80 values."""

    def __init__(self, current: bytes, previous: list[Any], secret_key: str, fallbacks: list[str],
                 legacy_writes: bool = False) -> None:
        self.secret_key = force_bytes(secret_key)
        secret_aes = _derive(secret_key)
        # An explicit CRYPTOGRAPHY_KEY writes the SECRET_KEY-independent format, unless
        # GATEWAY_SECRETS_LEGACY_FORMAT (a rolling upgrade: older releases read only 0x80).
        self.explicit = current != secret_aes
        self.write_version = ROTATING if self.explicit and not legacy_writes else LEGACY
        self.current = _key("current" if self.explicit else "current (SECRET_KEY)", current)
        keys = [self.current, *(_key(f"previous #{i}", _derive(m)) for i, m in enumerate(previous, 1)),
                _key("SECRET_KEY", secret_aes),
                *(_key(f"SECRET_KEY_FALLBACKS #{i}", _derive(m)) for i, m in enumerate(fallbacks, 1))]
        seen: set[bytes] = set()
        self.reading: list[Key] = []
        for key in keys:
            if key.aes not in seen:
                seen.add(key.aes)
                self.reading.append(key)
        macs = [self.secret_key, *(force_bytes(m) for m in fallbacks),
                *(force_bytes(m) for m in previous if not isinstance(m, bytes))]
        self.legacy_macs = list(dict.fromkeys(macs))

    def encrypt(self, plaintext: bytes) -> bytes:
        mac = self.current.mac if self.write_version == ROTATING else self.secret_key
        return FernetBytes(self.current.aes, _Signer(mac, self.write_version)).encrypt(plaintext)

    def decrypt(self, token: bytes) -> Decrypted:
        version = token[:1]
        if version == ROTATING:
            for key in self.reading:
                try:
                    data = FernetBytes(key.aes, _Signer(key.mac, ROTATING)).decrypt(token)
                except BadSignature:
                    continue
                except InvalidToken:
                    raise SecretDecryptionError(f"signed by the {key.label} key but does not decrypt: "
                                                "the stored bytes are corrupt") from None
                return Decrypted(_unpickle_str(data), key, version)
            raise SecretDecryptionError(NOT_CONFIGURED)
        if version == LEGACY:
            for mac in self.legacy_macs:
                signer = _Signer(mac, LEGACY)
                try:
                    signer.unsign(token)
                except BadSignature:
                    continue
                # SECRET_KEY's HMAC does not say which AES key was used: try each; a
                # wrong one fails the padding or the unpickling, never passes as a value.
                for key in self.reading:
                    try:
                        return Decrypted(_unpickle_str(FernetBytes(key.aes, signer).decrypt(token)), key, version, mac)
                    except (InvalidToken, SecretDecryptionError):
                        continue
                raise SecretDecryptionError(NOT_CONFIGURED)
            raise SecretDecryptionError("signed with a SECRET_KEY that is not configured: put the old one in "
                                        "SECRET_KEY_FALLBACKS or CRYPTOGRAPHY_KEY_PREVIOUS")
        raise SecretDecryptionError("not an encrypted value (unknown format)")


class _NoClasses(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError("a stored secret loads no classes")


def _unpickle_str(data: bytes) -> str:
    try:
        value = _NoClasses(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - any garbage: a wrong key
        raise SecretDecryptionError("decrypts to garbage (a wrong key)") from None
    if not isinstance(value, str):
        raise SecretDecryptionError("decrypts to garbage (a wrong key)")
    return value


_ring: tuple[tuple, KeyRing] | None = None
_ring_lock = threading.Lock()


def keyring() -> KeyRing:
    """The KeyRing of the current settings (rebuilt when they change: tests override them)."""
    global _ring
    previous = settings.CRYPTOGRAPHY_KEY_PREVIOUS if hasattr(settings, "CRYPTOGRAPHY_KEY_PREVIOUS") else []
    if isinstance(previous, str):
        previous = [p for p in previous.split(",") if p]
    config = (settings.CRYPTOGRAPHY_KEY, tuple(previous), settings.SECRET_KEY,
              tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ()), settings.CRYPTOGRAPHY_SALT,
              bool(getattr(settings, "GATEWAY_SECRETS_LEGACY_FORMAT", False)))
    cached = _ring
    if cached is not None and cached[0] == config:
        return cached[1]
    with _ring_lock:
        ring = KeyRing(_derive(config[0] or config[2]), list(config[1]), config[2], list(config[3]), config[5])
        _ring = (config, ring)
        return ring


def encrypt_value(value: str) -> bytes:
    return keyring().encrypt(pickle.dumps(value))


def decrypt_value(token: bytes) -> Decrypted:
    return keyring().decrypt(bytes(token))


class RotatingEncryptedTextField(EncryptedMixin, models.TextField):
    """django-cryptography's encrypted TextField, read with the key ring above. Its
    migration state is `encrypt(TextField(...))` (same column, same bytes layout):
    no migration. Historical models in migrations get the plain django-cryptography
    field; a data migration that reads secrets must use this module."""

    base_class = models.TextField
    wasinstance = True

    def _dump(self, value: Any) -> bytes:
        if isinstance(value, UndecryptableSecret):
            raise SecretDecryptionError(f"refusing to write an undecryptable value back ({value.reason})")
        return encrypt_value(value)

    def _load(self, value: bytes) -> Any:
        try:
            return decrypt_value(value).value
        except SecretDecryptionError as exc:
            return UndecryptableSecret(str(exc))

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if isinstance(value, UndecryptableSecret):
            raise SecretDecryptionError(f"{model_instance._meta.label}.{self.attname}: refusing to write an "
                                        f"undecryptable value back ({value.reason}); set a new value")
        return value


def rotating_fields() -> list[tuple[type[models.Model], RotatingEncryptedTextField]]:
    """Every model field encrypted with the key ring (what reencrypt_secrets rewrites)."""
    from django.apps import apps

    return [(model, field) for model in apps.get_models() for field in model._meta.concrete_fields
            if isinstance(field, RotatingEncryptedTextField)]


def plain_encrypted_fields() -> list[tuple[type[models.Model], models.Field]]:
    """Fields made with django-cryptography's encrypt() directly: not rotated."""
    from django.apps import apps

    return [(model, field) for model in apps.get_models() for field in model._meta.concrete_fields
            if isinstance(field, EncryptedMixin) and not isinstance(field, RotatingEncryptedTextField)]
