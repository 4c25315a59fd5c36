"""Admin for providers and their models: where requests can go, what they cost and
what they can serve.

The API key is write-only here: the form never renders the stored value (not even
to users who may only view), a blank field keeps the current key, and lists show
`Provider.api_key_display` (an env reference or a masked tail) instead. A model's
capabilities are checkboxes; its prompt-cache prices sit with its other prices.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from .adapters import ADAPTERS
from .admin_discovery import discover_view
from .admin_prices import (
    ModelPricesMixin, PriceHistoryInline, ScheduledPriceInline, UnpricedFilter, fill_from_catalogue, price_flag,
)
from .kinds import KINDS
from .models import CAPABILITIES, ENV_REF, Model, Provider
from .signals import edited_in_admin

API_KEY_HELP = (
    "Paste the provider's API key: it is stored encrypted and never shown again. "
    "Or write <code>env:VARNAME</code> (e.g. <code>env:OPENAI_API_KEY</code>) to have the gateway "
    "read the key from its environment variable VARNAME at request time; the secret then never "
    "enters the database. Self-hosted kinds ({free}) usually need no key."
)


class FieldErrorsFirst:
    """Model.clean() runs even when a field failed its own validation, and then sees
    that field's previous value (an unknown kind becomes ''): a second message about
    a value the user never typed only confuses. Keep the field's own."""

    def _update_errors(self, errors: ValidationError) -> None:
        if hasattr(errors, "error_dict"):
            errors.error_dict = {
                field: errs for field, errs in errors.error_dict.items()
                if field == NON_FIELD_ERRORS or field not in self._errors
            }
            if not errors.error_dict:
                return
        super()._update_errors(errors)


class ProviderForm(FieldErrorsFirst, forms.ModelForm):
    """Provider form with a write-only API key field.

    Blank on edit keeps the current key; "clear the stored key" removes it.
    """

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        # render_value=False: the stored secret never goes back to the browser.
        # autocomplete=new-password: stop browsers auto-filling the admin's own password.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
    )
    clear_api_key = forms.BooleanField(
        label="Clear the stored key",
        required=False,
        help_text="Tick to remove the current key (for providers that need none).",
    )

    class Meta:
        model = Provider
        fields = ["name", "kind", "base_url", "api_key", "timeout_s", "options", "enabled"]
        labels = {"base_url": "Base URL"}
        widgets = {"options": forms.Textarea(attrs={"rows": 3, "cols": 60})}  # most providers need none
        error_messages = {
            "kind": {"invalid_choice": "Unknown provider kind “%(value)s”. Choose one of the kinds in the list."}
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keyless = ", ".join(spec.kind for spec in KINDS.values() if not spec.needs_api_key)
        help_text = API_KEY_HELP.format(free=keyless)
        if self.instance.pk:
            # Admin help text is rendered as HTML; the masked tail comes from user input.
            help_text = format_html(
                "Current: <strong>{}</strong>. Leave blank to keep it; type a new value to replace it. ",
                self.instance.api_key_display,
            ) + help_text
        self.fields["api_key"].help_text = help_text
        if self.instance.pk and isinstance(self.instance.options, dict):
            # Extra auth headers are write-only like the key: shown masked, kept when
            # the mask comes back unchanged.
            self.initial["options"] = masked_options(self.instance.options)

    def clean_options(self):
        options = self.cleaned_data.get("options")
        return unmasked_options(options, self.instance.options) if self.instance.pk else options

    def clean_api_key(self) -> str:
        value = self.cleaned_data.get("api_key", "")
        if not value and self.instance.pk:
            # Blank on edit = keep the current key (the field is never pre-filled).
            return self.instance.api_key
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("clear_api_key"):
            if self.data.get(self.add_prefix("api_key")):
                self.add_error("api_key", "Either type a new key or tick 'Clear the stored key', not both.")
            else:
                cleaned["api_key"] = ""
        return cleaned

    @property
    def changed_data(self) -> list[str]:
        # The password field is never pre-filled, so "blank" is not a change; typing a
        # key or ticking "clear" is. Only the field name reaches the change history.
        changed = [
            name for name in super().changed_data if name not in ("api_key", "clear_api_key")
        ]
        if self.data.get(self.add_prefix("api_key")) or self.data.get(self.add_prefix("clear_api_key")):
            changed.append("api_key")
        return changed


SECRET_OPTION_WORDS = ("key", "secret", "token", "password", "credential")
MASK = "••••"


def _secret_option(name: str, value) -> bool:
    return any(word in name.lower() for word in SECRET_OPTION_WORDS) and value not in ("", None)


def masked_options(options):
    """A provider's options as the admin shows them: header values (extra auth headers
    live there) and secret-sounding settings replaced by MASK."""
    if not isinstance(options, dict):
        return options
    shown = {}
    for name, value in options.items():
        if name == "headers" and isinstance(value, dict):
            shown[name] = {header: MASK for header in value}
        elif _secret_option(name, value):
            shown[name] = MASK
        else:
            shown[name] = value
    return shown


def unmasked_options(submitted, stored):
    """The options as posted, with each MASK left in place replaced by the stored value."""
    if not isinstance(submitted, dict) or not isinstance(stored, dict):
        return submitted
    restored = dict(submitted)
    for name, value in submitted.items():
        if name == "headers" and isinstance(value, dict) and isinstance(stored.get("headers"), dict):
            old = stored["headers"]
            restored[name] = {h: old[h] if v == MASK and h in old else v for h, v in value.items()}
        elif value == MASK and name in stored:
            restored[name] = stored[name]
    return restored


def price_text(amount: Decimal | None) -> str:
    """2.500000 -> "2.50", 0.000150 -> "0.00015": at least cents, never trailing zeros past them."""
    if amount is None:
        return "—"
    plain = amount.normalize()
    return f"{plain.quantize(Decimal('0.01')) if plain.as_tuple().exponent > -2 else plain:f}"


class PriceField(forms.DecimalField):
    """A price input showing 2.50, not the column's 2.500000."""

    def prepare_value(self, value):
        return price_text(value) if isinstance(value, Decimal) else value


class CapabilitiesField(forms.MultipleChoiceField):
    """Model.capabilities (a JSON list) as one checkbox per capability, saved in
    CAPABILITIES order."""

    widget = forms.CheckboxSelectMultiple(attrs={"class": "radiolist"})  # the admin's list style: labels at full width

    def __init__(self, *, encoder=None, decoder=None, **kwargs) -> None:  # JSONField.formfield's arguments
        kwargs.setdefault("label", "capabilities")
        super().__init__(choices=[(name, f"{name}: {what}") for name, what in CAPABILITIES.items()], **kwargs)

    def prepare_value(self, value):
        return value if isinstance(value, (list, tuple)) else []

    def clean(self, value) -> list[str]:
        chosen = set(super().clean(value))
        return [name for name in CAPABILITIES if name in chosen]


CAPABILITIES_HELP = (
    "A request that needs what a model lacks (tools, images, a JSON response_format, a stream, an embeddings "
    "call) is never sent to it: the route's next target that has it is tried, and when none has it the client "
    "gets a 400 naming what is missing. Tick chat, embeddings or both."
)


class ModelForm(FieldErrorsFirst, forms.ModelForm):
    fill_from_catalogue = forms.BooleanField(
        label="Fill from the price catalogue", required=False, initial=True,
        help_text="Prices left at 0 and a blank context window are taken from the price catalogue shipped with the "
        "gateway, by provider kind and upstream model id (its entry and the date it was checked show below). "
        "Nothing is fetched from the internet.",
    )
    catalogue_entry = None  # the entry the prices were filled from (a message after saving)

    class Meta:
        model = Model
        fields = "__all__"
        field_classes = {
            "input_price_per_mtok": PriceField, "output_price_per_mtok": PriceField,
            "cache_read_price_per_mtok": PriceField, "cache_write_price_per_mtok": PriceField,
            "capabilities": CapabilitiesField,
        }
        help_texts = {"capabilities": CAPABILITIES_HELP}

    def clean_capabilities(self) -> list[str]:
        chosen = self.cleaned_data.get("capabilities") or []
        if not {"chat", "embeddings"} & set(chosen):
            raise ValidationError("Tick chat, embeddings or both: a model serves at least one of them.")
        return chosen

    def clean(self) -> dict:
        cleaned = super().clean()
        provider, chosen = cleaned.get("provider"), cleaned.get("capabilities") or []
        spec = provider.spec if provider is not None else None
        if "embeddings" in chosen and spec is not None and not ADAPTERS[spec.wire].serves_embeddings:
            self.add_error("capabilities", f"{spec.label} has no embeddings endpoint: untick embeddings "
                                           f"(the gateway cannot send embeddings to {provider.name}).")
        if cleaned.get("fill_from_catalogue"):
            self.catalogue_entry = fill_from_catalogue(cleaned)
        return cleaned


class ModelInlineForm(ModelForm):
    """Short column headings, so the provider page's model table fits a laptop screen;
    the full wording stays in each heading's help tooltip and on the model's own page."""

    class Meta(ModelForm.Meta):
        labels = {"upstream_id": "upstream ID", "input_price_per_mtok": "input $/1M",
                  "output_price_per_mtok": "output $/1M", "context_window": "context", "quality_score": "quality"}


class ModelInline(admin.TabularInline):
    model = Model
    form = ModelInlineForm
    fields = [
        "name", "upstream_id", "input_price_per_mtok", "output_price_per_mtok", "context_window", "quality_score",
        "enabled",
    ]
    extra = 0
    show_change_link = True

    def get_extra(self, request: HttpRequest, obj: Provider | None = None, **kwargs) -> int:
        return 1 if obj is None else 0


class RoutesCheckMixin:
    """After a change, let other apps react (routing warns about enabled routes that
    can no longer serve). Disabling stays possible: it is the emergency switch."""

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change:
            edited_in_admin.send(sender=type(form.instance), request=request, instance=form.instance)


@admin.register(Provider)
class ProviderAdmin(RoutesCheckMixin, admin.ModelAdmin):
    form = ProviderForm
    inlines = [ModelInline]
    actions = ["discover_models"]
    # The request timeout is on the detail page.
    list_display = ["name", "enabled", "kind", "model_count", "base_url_display", "api_key_display"]
    list_editable = ["enabled"]
    list_filter = ["enabled", "kind"]
    search_fields = ["name", "base_url"]  # never api_key: it is encrypted
    ordering = ["name"]
    show_facets = admin.ShowFacets.ALWAYS
    readonly_fields = ["created_at", "updated_at"]
    # A base URL typed without a scheme means https (Django 6's default too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_fieldsets(self, request: HttpRequest, obj: Provider | None = None):
        key_fields = ["api_key", "clear_api_key"] if obj is not None and obj.api_key else ["api_key"]
        options = "options"
        if obj is not None and not self.has_change_permission(request, obj):
            # View-only users get every field read-only, rendered from the model:
            # show the masked displays, never the fields themselves (options may
            # carry extra auth headers).
            key_fields, options = ["api_key_display"], "options_display"
        fieldsets = [
            (None, {"fields": ["name", "kind", "base_url", "enabled"]}),
            ("Credentials", {"fields": key_fields}),
            (
                "Connection",
                {
                    "fields": ["timeout_s", options],
                    "description": "Timeouts and kind-specific settings. Most providers need no options.",
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}))
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        return super().get_queryset(request).annotate(_model_count=Count("models"))

    def save_model(self, request: HttpRequest, obj: Provider, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Warnings, not errors: the gateway may run with another environment than the admin.
        ref = ENV_REF.match(obj.api_key)
        if ref and ref.group(1) not in os.environ:
            messages.warning(
                request,
                f"{obj.name}: the environment variable {ref.group(1)} is not set here. "
                "Make sure it is set where the gateway runs, or requests will be sent without a key.",
            )
        elif not obj.api_key and obj.spec is not None and obj.spec.needs_api_key:
            messages.warning(request, f"{obj.name}: no API key is set; {obj.spec.label} normally requires one.")

    @admin.display(description="API key")
    def api_key_display(self, obj: Provider) -> str:
        return obj.api_key_display

    @admin.display(description="options")
    def options_display(self, obj: Provider) -> str:
        return json.dumps(masked_options(obj.options), indent=1, ensure_ascii=False)

    def get_urls(self):
        discover = path("<path:object_id>/discover/", self.admin_site.admin_view(self.discover_view),
                        name="providers_provider_discover")
        return [discover, *super().get_urls()]

    def discover_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return discover_view(self, request, object_id)

    @admin.action(description="Discover models (the provider's own model list)", permissions=["view"])
    def discover_models(self, request: HttpRequest, queryset: QuerySet[Provider]):
        if queryset.count() != 1:
            self.message_user(request, "Tick one provider to discover its models.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:providers_provider_discover", args=[queryset.get().pk]))

    @admin.display(description="base URL", ordering="base_url")
    def base_url_display(self, obj: Provider) -> str:
        if obj.base_url:
            return obj.base_url
        return f"{obj.effective_base_url or '—'} (default)"

    @admin.display(description="models", ordering="_model_count")
    def model_count(self, obj: Provider) -> int:
        return obj._model_count


@admin.register(Model)
class ProviderModelAdmin(ModelPricesMixin, RoutesCheckMixin, admin.ModelAdmin):
    form = ModelForm
    inlines = [ScheduledPriceInline, PriceHistoryInline]
    list_display = ["name_serves", "provider_state", "enabled", "input_price", "output_price", "context", "quality",
                    "upstream_id"]
    list_editable = ["enabled"]
    list_filter = ["enabled", UnpricedFilter, "provider", "provider__kind"]
    list_select_related = ["provider"]
    search_fields = ["name", "upstream_id", "provider__name"]
    ordering = ["provider__name", "name"]
    show_facets = admin.ShowFacets.ALWAYS
    fieldsets = [
        (None, {"fields": ["provider", "name", "upstream_id", "enabled"]}),
        ("Capabilities", {"fields": ["capabilities"]}),
        (
            "Prices and limits",
            {
                "fields": ["input_price_per_mtok", "output_price_per_mtok", "cache_read_price_per_mtok",
                           "cache_write_price_per_mtok", "fill_from_catalogue", "catalogue_price",
                           "price_effective_from", "context_window", "quality_score"],
                "description": "Prices are USD per million tokens, as on provider price pages. "
                "They are copied into each usage record, so changes apply to new requests only; each change is "
                "kept in the price history below, and a price can be scheduled for a future date. "
                "A model with input and output prices of 0 (on a kind that is not free) is flagged unpriced. "
                "Prompt-cache prices apply to the input tokens a provider reports as read from or written "
                "to its prompt cache; blank means the input price. "
                "The quality score is used by cost-aware routes.",
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["created_at", "updated_at", "catalogue_price", "price_effective_from"]

    @admin.display(description="provider", ordering="provider__name")
    def provider_state(self, obj: Model) -> str:
        # The model's own tick says nothing about its provider's switch.
        if obj.provider.enabled:
            return obj.provider.name
        return format_html('{}<br><span class="quiet">switched off</span>', obj.provider.name)

    @admin.display(description="name", ordering="name")
    def name_serves(self, obj: Model) -> str:
        """The name; below it what the model serves when it is not chat alone, every
        capability in the tooltip (no column of its own: the list fits a laptop)."""
        caps = [c for c in CAPABILITIES if c in (obj.capabilities if isinstance(obj.capabilities, list) else [])]
        endpoints = " + ".join(c for c in ("chat", "embeddings") if c in caps) or "nothing"
        if endpoints == "chat":
            return format_html('<span title="{}">{}</span>', ", ".join(caps), obj.name)
        return format_html('<span title="{}">{}</span><br><span class="quiet">{}</span>', ", ".join(caps), obj.name,
                           endpoints)

    @admin.display(description="context", ordering="context_window")
    def context(self, obj: Model) -> str:
        return f"{obj.context_window:,}" if obj.context_window else "—"

    @admin.display(description="quality", ordering="quality_score")
    def quality(self, obj: Model) -> int:
        return obj.quality_score

    @admin.display(description="input $/1M", ordering="input_price_per_mtok")
    def input_price(self, obj: Model) -> str:
        # An unpriced model says so under its price (no column of its own: the list fits a laptop).
        if obj.unpriced:
            return format_html("{}<br>{}", price_text(obj.input_price_per_mtok), price_flag(obj))
        return price_text(obj.input_price_per_mtok)

    @admin.display(description="output $/1M", ordering="output_price_per_mtok")
    def output_price(self, obj: Model) -> str:
        return price_text(obj.output_price_per_mtok)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        # __str__ reads the provider's name (selects, delete pages, history).
        return super().get_queryset(request).select_related("provider")
