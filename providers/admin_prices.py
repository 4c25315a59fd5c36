"""The prices side of the model admin (providers.admin.ProviderModelAdmin).

- The price history, read-only, with the row in effect marked; scheduled prices (dated
  in the future) are their own inline, added, changed or cancelled until their date.
- The price catalogue: a new model's empty prices and context window are filled from
  it when the editor leaves "fill from the catalogue" ticked, and a model's page shows
  the catalogue's entry (with the date it was checked) next to its own prices.
- Unpriced models (input and output 0 on a kind that is not free): a flag under the
  input price in the list, a filter, and a warning when one is saved.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from .models import PRICE_FIELDS, Model, ModelPrice, PriceSource, Provider
from .price_catalogue import CatalogueEntry, money
from .price_catalogue import entry_for as catalogue_entry
from .prices import apply_due_prices, non_free_kinds

PRICE_COLUMNS = ["effective_from", *PRICE_FIELDS]


def fill_from_catalogue(cleaned: dict) -> CatalogueEntry | None:
    """Put the catalogue's prices and context window into a model form's cleaned data
    where the editor left them empty (0 or blank); the entry used, or None."""
    entry = catalogue_entry(cleaned.get("provider"), cleaned.get("upstream_id") or cleaned.get("name") or "")
    if entry is None:
        return None
    values = entry.model_fields()
    if not cleaned.get("input_price_per_mtok") and not cleaned.get("output_price_per_mtok"):
        for name in PRICE_FIELDS:
            cleaned[name] = values[name]
    if not cleaned.get("context_window"):
        cleaned["context_window"] = values["context_window"]
    return entry


def catalogue_text(model: Model) -> str:
    """The model page's read-only "price catalogue" line: the entry and how it differs."""
    entry = catalogue_entry(model.provider if model.provider_id else None, model.effective_upstream_id)
    if entry is None:
        return "Not in the price catalogue for this provider kind."
    ours = dict(zip(PRICE_FIELDS, model.prices()))
    theirs = entry.model_fields()
    differs = [name.split("_price")[0].replace("_", " ") for name in PRICE_FIELDS
               if _amount(ours[name]) != _amount(theirs[name])]
    tail = f" Differs from this model's prices: {', '.join(differs)}." if differs else " Same as this model's prices."
    return entry.summary() + "." + tail


def _amount(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).normalize()


class UnpricedFilter(admin.SimpleListFilter):
    title = "price"
    parameter_name = "price"

    def lookups(self, request, model_admin):
        return [("unpriced", "Unpriced (flagged)"), ("priced", "Priced or free")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Model]) -> QuerySet[Model]:
        unpriced = Q(input_price_per_mtok=0, output_price_per_mtok=0, provider__kind__in=non_free_kinds())
        if self.value() == "unpriced":
            return queryset.filter(unpriced)
        if self.value() == "priced":
            return queryset.exclude(unpriced)
        return queryset


def price_flag(obj: Model) -> str:
    if obj.unpriced:
        return format_html('<span class="unpriced" title="{}" style="color:var(--error-fg,#ba2121)">⚠ unpriced</span>',
                           "Input and output prices are 0 on a kind that is not free: requests are served and "
                           "their usage records are marked unpriced. Set the prices (or fill them from the catalogue).")
    return ""


class PriceHistoryInline(admin.TabularInline):
    """Prices in effect since a date, newest first; the one in effect now is marked."""

    model = ModelPrice
    verbose_name = "price"
    verbose_name_plural = "Price history (what each usage record was billed at is kept on the record itself)"
    fields = ["effective_from", "input", "output", "cache_read", "cache_write", "source", "state"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelPrice]:
        return super().get_queryset(request).filter(effective_from__lte=timezone.now())

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="input $/1M")
    def input(self, row: ModelPrice) -> str:
        return _shown(row.input_price_per_mtok)

    @admin.display(description="output $/1M")
    def output(self, row: ModelPrice) -> str:
        return _shown(row.output_price_per_mtok)

    @admin.display(description="cache read $/1M")
    def cache_read(self, row: ModelPrice) -> str:
        return _shown(row.cache_read_price_per_mtok, "= input")

    @admin.display(description="cache write $/1M")
    def cache_write(self, row: ModelPrice) -> str:
        return _shown(row.cache_write_price_per_mtok, "= input")

    @admin.display(description="")
    def state(self, row: ModelPrice) -> str:
        current = row.model.price_effective_from
        return "in effect" if current is not None and row.effective_from == current else ""


def _shown(amount: Decimal | None, blank: str = "—") -> str:
    return blank if amount is None else money(Decimal(amount))


class PriceInput(forms.DecimalField):
    """2.50, not the column's 2.500000."""

    def prepare_value(self, value):
        return money(value) if isinstance(value, Decimal) else value


class ScheduledPriceForm(forms.ModelForm):
    class Meta:
        model = ModelPrice
        fields = PRICE_COLUMNS
        field_classes = {name: PriceInput for name in PRICE_FIELDS}

    def clean_effective_from(self):
        when = self.cleaned_data["effective_from"]
        if when <= timezone.now():
            raise forms.ValidationError("A scheduled price starts in the future. To change the price now, edit the "
                                        "prices above (past usage keeps the price it was billed at).")
        return when


class ScheduledPriceInline(admin.TabularInline):
    """Prices that take effect at a future date (within the routing catalogue's
    refresh interval, GATEWAY_CONFIG_TTL_S, of it); cancel one by deleting it."""

    model = ModelPrice
    form = ScheduledPriceForm
    verbose_name = "scheduled price"
    verbose_name_plural = "Scheduled prices (take effect at their date)"
    fields = PRICE_COLUMNS
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelPrice]:
        return super().get_queryset(request).filter(effective_from__gt=timezone.now())


class ModelPricesMixin:
    """The model admin's price behaviour: the catalogue line and fill, the history
    inlines on change pages, scheduled prices applied as soon as they are due, and the
    unpriced warning on save."""

    def get_urls(self):
        lookup = path("catalogue/", self.admin_site.admin_view(self.catalogue_view), name="providers_model_catalogue")
        return [lookup, *super().get_urls()]

    def catalogue_view(self, request: HttpRequest) -> JsonResponse:
        """The add form's live hint: the catalogue's entry for ?provider=<id>&model=<upstream id or name>."""
        if not self.has_view_or_change_permission(request) and not self.has_add_permission(request):
            raise PermissionDenied
        pk = request.GET.get("provider", "")
        provider = Provider.objects.filter(pk=pk).first() if pk.isdigit() else None
        entry = catalogue_entry(provider, request.GET.get("model", "").strip())
        if entry is None:
            free = provider is not None and provider.spec is not None and provider.spec.free
            return JsonResponse({"found": False, "text": "Free kind: no prices." if free else
                                 "Not in the price catalogue: set the prices by hand (0 = unpriced, flagged)."})
        return JsonResponse({"found": True, "text": f"Catalogue: {entry.summary()}."})

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # a new model: no catalogue line or date yet, the fill box instead
            hidden = {"catalogue_price", "price_effective_from"}
        else:
            hidden = {"fill_from_catalogue"}
        return [(title, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]}) for title, opts in fieldsets]

    def get_inlines(self, request: HttpRequest, obj: Model | None):
        # A new model has no history yet; its first price is the one typed above.
        return self.inlines if obj is not None else []

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        """?provider=<id>&name=<upstream id> prefills the catalogue's prices (a link
        from elsewhere, e.g. a discovery row)."""
        initial = super().get_changeform_initial_data(request)
        provider = Provider.objects.filter(pk=initial.get("provider")).first() if str(initial.get("provider", "")).isdigit() else None
        entry = catalogue_entry(provider, initial.get("upstream_id") or initial.get("name") or "")
        if entry is not None:
            initial.update({k: v for k, v in entry.model_fields().items() if v is not None})
            messages.info(request, f"Prices prefilled from the price catalogue: {entry.summary()}.")
        return initial

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        apply_due_prices(notify=True)  # a scheduled price whose date came shows as in effect
        return super().get_object(request, object_id, from_field)

    def save_model(self, request: HttpRequest, obj: Model, form, change: bool) -> None:
        entry = getattr(form, "catalogue_entry", None)
        obj.price_source = PriceSource.CATALOGUE if entry is not None and not change else PriceSource.ADMIN
        super().save_model(request, obj, form, change)
        if entry is not None and not change:
            messages.info(request, f"{obj}: prices filled from the price catalogue: {entry.summary()}.")
        if obj.unpriced:
            messages.warning(request, f"{obj} has no price (input and output 0): requests to it are served, billed "
                             "at $0 and their usage records marked unpriced. Set its prices, or fill them from the "
                             "price catalogue, to bill it.")

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        apply_due_prices(notify=True)

    @admin.display(description="price catalogue")
    def catalogue_price(self, obj: Model) -> str:
        return catalogue_text(obj)
