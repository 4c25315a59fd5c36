"""manage.py price_catalogue list|check|drift|fill: the shipped price catalogue
(providers/data/prices.json) against the configured models. Nothing is fetched."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from providers import price_catalogue as pc
from providers.models import PRICE_FIELDS, Model, PriceSource
from providers.price_catalogue import entry_for, money


def _text(value) -> str:
    return "-" if value is None else money(value)


def _drift(model: Model, entry: pc.CatalogueEntry) -> list[str]:
    """'input 2.50 -> catalogue 3.00' for each price that differs."""
    theirs = entry.model_fields()
    found = []
    for name, ours in zip(PRICE_FIELDS, model.prices()):
        mine = None if ours is None else ours.normalize()
        other = None if theirs[name] is None else theirs[name].normalize()
        if mine != other:
            found.append(f"{name.removesuffix('_price_per_mtok').replace('_', ' ')} {_text(ours)} -> catalogue {_text(theirs[name])}")
    return found


class Command(BaseCommand):
    help = (
        "The price catalogue shipped with the gateway: 'list' its entries (--kind), 'check' the file, "
        "'drift' compare configured models with it, 'fill' set unpriced models' prices from it (--apply to write)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["list", "check", "drift", "fill"])
        parser.add_argument("--kind", help="Only this provider kind (list).")
        parser.add_argument("--apply", action="store_true", help="fill: write the prices (default: only show them).")

    def handle(self, *args, action: str, kind: str | None, apply: bool, **options) -> None:
        getattr(self, f"do_{action}")(kind=kind, apply=apply)

    def do_list(self, kind: str | None, **_) -> None:
        kinds = [kind] if kind else pc.kinds()
        if kind and kind not in pc.kinds():
            raise CommandError(f"The catalogue has no section '{kind}'; it has: {', '.join(pc.kinds())}.")
        for k in kinds:
            for model_id, entry in pc.entries(k).items():
                self.stdout.write(f"{k}\t{model_id}\t{entry.summary()}")

    def do_check(self, **_) -> None:
        problems = pc.problems(pc.load())
        if problems:
            raise CommandError(f"{pc.PATH}: " + "; ".join(problems))
        oldest = min(s["checked"] for s in pc.load()["providers"].values())
        self.stdout.write(f"{pc.PATH.name}: valid, {sum(len(pc.entries(k)) for k in pc.kinds())} entries, "
                          f"oldest section checked {oldest}.")

    def do_drift(self, **_) -> None:
        differ = 0
        for model in Model.objects.select_related("provider").order_by("provider__name", "name"):
            entry = entry_for(model.provider, model.effective_upstream_id)
            if entry is None:
                continue
            if found := _drift(model, entry):
                differ += 1
                self.stdout.write(f"{model}: " + "; ".join(found) + f" (checked {entry.checked.isoformat()})")
        self.stdout.write(f"{differ} model(s) differ from the catalogue.")

    def do_fill(self, apply: bool, **_) -> None:
        filled = 0
        for model in Model.objects.select_related("provider").order_by("provider__name", "name"):
            entry = entry_for(model.provider, model.effective_upstream_id)
            if not model.unpriced or entry is None:
                continue
            filled += 1
            self.stdout.write(f"{model}: {entry.summary()}" + ("" if apply else " (not written: --apply)"))
            if apply:
                for name, value in entry.model_fields().items():
                    if name != "context_window" or model.context_window is None:
                        setattr(model, name, value)
                model.price_source = PriceSource.CATALOGUE
                model.save()
        self.stdout.write(f"{filled} unpriced model(s) {'filled' if apply else 'can be filled'} from the catalogue.")
