"""Provider and Model: where requests can go and what they cost."""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from .kinds import KINDS, kind_choices
from .secret_keys import RotatingEncryptedTextField, UndecryptableSecret
from .secret_refs import ENV_REF, is_reference  # noqa: F401 - ENV_REF re-exported (providers.admin)
from .secret_refs import check as check_secret_reference
from .secrets import MASK, is_secret_header
# The highest price a model may have, per million tokens (today's dearest models cost
# a few hundred). With the token bound of providers.types.MAX_REPORTED_TOKENS it keeps
# every ledger cost inside its column: 2 x 10^9 tokens x $10,000 / 10^6 = $2 x 10^7,
# below the cost columns' 10^8 (billing.models.UsageRecord.cost_usd).
MAX_PRICE_PER_MTOK = Decimal("10000")
PRICE_HELP = f"0 to {MAX_PRICE_PER_MTOK:,} USD per million tokens."

# What a model can serve. `chat` and `embeddings` are the endpoints; the others are what
# a chat request may need (ChatRequest.needs). A model without a capability is never
# sent a request that needs it: the route's next target is tried, or the client is told.
CAPABILITIES = {
    "chat": "chat completions, Messages, Responses",
    "streaming": "streamed answers",
    "tools": "tool / function calling",
    "vision": "images in messages",
    "json_mode": "response_format json",
    "thinking": "extended thinking / reasoning",
    "embeddings": "POST /v1/embeddings",
}
CHAT_CAPABILITIES = ("chat", "streaming", "tools", "vision", "json_mode")


def default_capabilities() -> list[str]:
    """A new model (and every model before capabilities existed): a chat model that
    streams, calls tools, reads images and answers in JSON, as most do."""
    return list(CHAT_CAPABILITIES)
NAME_HELP = "Letters, digits, '.', '-' and '_'. Used in config files and reports."


def validate_name(value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]*", value or ""):
        raise ValidationError(
            "Use letters, digits, '.', ':', '-' and '_' only, starting with a letter or digit."
        )


class Timestamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Provider(Timestamped):
    name = models.CharField(max_length=100, unique=True, validators=[validate_name], help_text=NAME_HELP)
    kind = models.CharField(max_length=40, choices=kind_choices, help_text="Which API this provider speaks.")
    base_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Leave blank for the kind's public endpoint. For OpenAI-compatible servers, "
        "include the version path, e.g. http://127.0.0.1:8000/v1.",
    )
    # Encrypted at rest (providers.secret_keys: rotatable key); either the secret itself
    # or a reference: env:VARNAME, file:/path, <backend>:<path> (providers.secret_refs).
    # Its migration state is django-cryptography's encrypt(TextField): the help text
    # there stays as it was (help text is not schema).
    api_key = RotatingEncryptedTextField(
        blank=True,
        default="",
        help_text="The provider's API key (stored encrypted), or env:VARNAME to read it "
        "from the gateway's environment. Leave blank to keep the current key.",
    )
    timeout_s = models.DecimalField(
        "request timeout (s)",
        max_digits=6,
        decimal_places=1,
        default=Decimal("60"),
        validators=[MinValueValidator(Decimal("0.1"))],
        help_text="Longest wait for one upstream call (and between streamed chunks).",
    )
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text='Kind-specific settings as JSON. Mock: {"latency_ms": 200, "tokens_per_s": 50, '
        '"failure_rate": 0.1}. Any kind: {"headers": {"X-Org": "..."}}.',
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def spec(self):
        return KINDS.get(self.kind)

    @property
    def api_key_display(self) -> str:
        """What may be shown back: the reference, or a masked tail of the secret."""
        if isinstance(self.api_key, UndecryptableSecret):
            return "(cannot be decrypted: see docs/security/secrets.md)"
        if not self.api_key:
            return "(none)"
        if is_reference(self.api_key):
            return self.api_key
        return f"…{self.api_key[-4:]}" if len(self.api_key) >= 12 else "••••"

    def _secret_errors(self) -> dict[str, str]:
        """The key and secret headers: decryptable, not a mask placeholder, and a
        reference that can be read (file:, backends; env: only its form)."""
        errors: dict[str, str] = {}
        key = self.api_key
        if isinstance(key, UndecryptableSecret):
            errors["api_key"] = (f"The stored key cannot be decrypted ({key.reason}). Configure the encryption key "
                                 "that wrote it (CRYPTOGRAPHY_KEY_PREVIOUS), or type a new key.")
        elif key == MASK:
            errors["api_key"] = f"{MASK} is the placeholder of a masked export, not a key: type the key or a reference."
        elif problem := check_secret_reference(key):
            errors["api_key"] = f"{problem[:1].upper()}{problem[1:]}." if problem.startswith("an ") else f"{problem}."
        headers = self.options.get("headers") if isinstance(self.options, dict) else None
        if isinstance(headers, dict):
            for name, value in headers.items():
                if not isinstance(value, str):
                    continue
                if value == MASK and is_secret_header(name):
                    errors["options"] = (f'"headers.{name}" is {MASK}, the placeholder of a masked export: '
                                         "give the value or a reference.")
                elif is_reference(value) and (problem := check_secret_reference(value)):
                    errors["options"] = f'"headers.{name}": {problem}.'
        return errors

    def clean(self) -> None:
        spec = KINDS.get(self.kind)
        if spec is None:
            raise ValidationError({"kind": f"Unknown provider kind '{self.kind}'. Choose one of: {', '.join(KINDS)}."})
        if secret_errors := self._secret_errors():
            raise ValidationError(secret_errors)
        if not isinstance(self.options, dict):
            raise ValidationError({"options": "Options must be a JSON object."})
        headers = self.options.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ValidationError({"options": '"headers" must be an object of strings.'})
        from .adapters import ADAPTERS  # the adapters import this module's catalogue

        errors = ADAPTERS[spec.wire].check_config(spec, self.base_url, self.options)
        if errors:
            raise ValidationError(errors)

    @property
    def effective_base_url(self) -> str:
        spec = KINDS.get(self.kind)
        return (self.base_url or (spec.default_base_url if spec else "")).rstrip("/")


class Model(Timestamped):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(
        max_length=200,
        validators=[validate_name],
        help_text="Name inside this provider; routes refer to it as provider/name.",
    )
    upstream_id = models.CharField(
        "upstream model id",
        max_length=200,
        blank=True,
        help_text="The model id sent to the provider. Leave blank to use the name.",
    )
    input_price_per_mtok = models.DecimalField(
        "input price (USD / 1M tokens)", max_digits=12, decimal_places=6, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_PRICE_PER_MTOK)], help_text=PRICE_HELP,
    )
    output_price_per_mtok = models.DecimalField(
        "output price (USD / 1M tokens)", max_digits=12, decimal_places=6, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_PRICE_PER_MTOK)], help_text=PRICE_HELP,
    )
    cache_read_price_per_mtok = models.DecimalField(
        "prompt-cache read price (USD / 1M tokens)", max_digits=12, decimal_places=6, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_PRICE_PER_MTOK)],
        help_text="Input tokens the provider read from its prompt cache (Anthropic: about a tenth of the input "
        "price). Blank = the input price.",
    )
    cache_write_price_per_mtok = models.DecimalField(
        "prompt-cache write price (USD / 1M tokens)", max_digits=12, decimal_places=6, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_PRICE_PER_MTOK)],
        help_text="Input tokens written to the provider's prompt cache (Anthropic: 1.25x the input price for "
        "5 minutes). Blank = the input price.",
    )
    capabilities = models.JSONField(
        default=default_capabilities, blank=True,
        help_text="What the model can do: " + ", ".join(f"{k} ({v})" for k, v in CAPABILITIES.items())
        + ". A request that needs one the model lacks is never sent to it.",
    )
    context_window = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens the model accepts (prompt + answer). Blank if unknown."
    )
    quality_score = models.PositiveSmallIntegerField(
        default=50,
        validators=[MaxValueValidator(100)],
        help_text="0-100: your judgement of answer quality. Cost-aware routes pick the cheapest model "
        "whose score meets their minimum.",
    )
    enabled = models.BooleanField(default=True)
    # When the prices above took effect: the effective_from of the price history row
    # they come from (ModelPrice). A later row whose date has come is applied over
    # them (providers.prices.apply_due_prices).
    price_effective_from = models.DateTimeField(
        "prices in effect since", null=True, blank=True, editable=False,
        help_text="When the current prices took effect (their row in the price history).",
    )

    class Meta:
        ordering = ["provider__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="model_unique_name_per_provider"),
            models.CheckConstraint(
                condition=models.Q(input_price_per_mtok__gte=0) & models.Q(output_price_per_mtok__gte=0),
                name="model_prices_non_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(input_price_per_mtok__lte=MAX_PRICE_PER_MTOK)
                & models.Q(output_price_per_mtok__lte=MAX_PRICE_PER_MTOK),
                name="model_prices_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider.name}/{self.name}" if self.provider_id else self.name

    def clean(self) -> None:
        errors = {}
        caps = self.capabilities
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            errors["capabilities"] = "A list of capability names, e.g. [\"chat\", \"tools\"]."
        elif unknown := sorted(set(caps) - set(CAPABILITIES)):
            errors["capabilities"] = f"Unknown capability {', '.join(unknown)}; known: {', '.join(CAPABILITIES)}."
        elif not {"chat", "embeddings"} & set(caps):
            errors["capabilities"] = "A model serves chat, embeddings or both: list at least one of them."
        if self.input_price_per_mtok is not None and self.input_price_per_mtok < 0:
            errors["input_price_per_mtok"] = "Prices cannot be negative."
        if self.output_price_per_mtok is not None and self.output_price_per_mtok < 0:
            errors["output_price_per_mtok"] = "Prices cannot be negative."
        if errors:
            raise ValidationError(errors)

    @property
    def effective_upstream_id(self) -> str:
        return self.upstream_id or self.name

    # ---- prices with an effective date ----------------------------------------------
    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        if all(name in field_names for name in PRICE_FIELDS):
            instance._saved_prices = instance.prices()
        return instance

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if fields is None or set(PRICE_FIELDS) <= set(fields):
            self._saved_prices = self.prices()  # what the database holds now (e.g. a scheduled price applied)

    def prices(self) -> tuple[Decimal | None, ...]:
        """(input, output, cache read, cache write) as Decimals, in PRICE_FIELDS order."""
        return tuple(self._meta.get_field(name).to_python(getattr(self, name)) for name in PRICE_FIELDS)

    @property
    def unpriced(self) -> bool:
        """No price at all (input and output 0) on a kind that is not free: served, but
        flagged in the admin, in metrics and on its usage records (docs/prices.md)."""
        spec = KINDS.get(self.provider.kind) if self.provider_id else None
        return spec is not None and not spec.free and not self.input_price_per_mtok and not self.output_price_per_mtok

    def save(self, *args, **kwargs) -> None:
        """Every save that changes the prices (admin, YAML import, management API, a
        factory) appends a price history row effective now, in the same transaction:
        the history is complete whoever writes. `price_source` (an attribute the caller
        may set) says who, for the history's reader."""
        update_fields = kwargs.get("update_fields")
        touches_prices = update_fields is None or bool(set(update_fields) & set(PRICE_FIELDS))
        changed = touches_prices and (self._state.adding or self.prices() != getattr(self, "_saved_prices", None))
        if not changed:
            return super().save(*args, **kwargs)
        self.price_effective_from = timezone.now()
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "price_effective_from"}
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)
            ModelPrice.objects.create(model=self, effective_from=self.price_effective_from,
                                      source=getattr(self, "price_source", PriceSource.SAVED),
                                      **dict(zip(PRICE_FIELDS, self.prices())))
        self._saved_prices = self.prices()


PRICE_FIELDS = ("input_price_per_mtok", "output_price_per_mtok", "cache_read_price_per_mtok", "cache_write_price_per_mtok")


class PriceSource(models.TextChoices):
    SAVED = "saved", "model saved (import, API)"
    ADMIN = "admin", "edited in the admin"
    SCHEDULED = "scheduled", "scheduled in the admin"
    CATALOGUE = "catalogue", "from the price catalogue"
    MIGRATION = "migration", "prices before the history existed"


def _price_field(label: str, **kw) -> models.DecimalField:
    return models.DecimalField(
        label, max_digits=12, decimal_places=6,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_PRICE_PER_MTOK)], **kw)


class ModelPrice(models.Model):
    """One price of a model from a date on. The price in effect at a time is the row
    with the latest effective_from at or before it; a row dated in the future takes
    effect at its date (within the routing catalogue's refresh interval). Usage records
    copy their price and cost when written, so no row here rewrites what was billed."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="price_history")
    effective_from = models.DateTimeField(default=timezone.now, help_text="From when this price applies.")
    input_price_per_mtok = _price_field("input $/1M", default=Decimal("0"), help_text=PRICE_HELP)
    output_price_per_mtok = _price_field("output $/1M", default=Decimal("0"), help_text=PRICE_HELP)
    cache_read_price_per_mtok = _price_field("cache read $/1M", null=True, blank=True, help_text="Blank = the input price.")
    cache_write_price_per_mtok = _price_field("cache write $/1M", null=True, blank=True, help_text="Blank = the input price.")
    source = models.CharField(max_length=20, choices=PriceSource.choices, default=PriceSource.SCHEDULED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-effective_from", "-id"]
        indexes = [models.Index(fields=["model", "-effective_from"], name="modelprice_model_from")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(input_price_per_mtok__gte=0) & models.Q(output_price_per_mtok__gte=0)
                & models.Q(input_price_per_mtok__lte=MAX_PRICE_PER_MTOK)
                & models.Q(output_price_per_mtok__lte=MAX_PRICE_PER_MTOK),
                name="modelprice_prices_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"from {self.effective_from:%Y-%m-%d %H:%M}"

    def prices(self) -> tuple[Decimal | None, ...]:
        return tuple(getattr(self, name) for name in PRICE_FIELDS)


class HealthCheck(models.Model):
    """One active probe of a model (a minimal request sent on a schedule by Celery)."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="health_checks")
    checked_at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    error_kind = models.CharField(max_length=30, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True, help_text="Why it failed (never contains secrets).")

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["model", "-checked_at"], name="health_model_time")]

    def __str__(self) -> str:
        return f"{self.model} {'ok' if self.ok else self.error_kind} at {self.checked_at:%Y-%m-%d %H:%M:%S}"
