"""The date range every report and CSV export takes (?start=&end= or ?preset=)."""

from __future__ import annotations

from datetime import UTC, date, timedelta

from django import forms
from django.utils import timezone

MAX_DAYS = 3700  # about ten years: bounds the chart and the daily CSV


def this_month(today: date) -> tuple[date, date]:
    return today.replace(day=1), today


def last_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


PRESETS = {
    "this_month": ("This month", this_month),
    "last_month": ("Last month", last_month),
    "last_7": ("Last 7 days", lambda today: (today - timedelta(days=6), today)),
    "last_30": ("Last 30 days", lambda today: (today - timedelta(days=29), today)),
}


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


class DateRangeForm(forms.Form):
    """Inclusive UTC date range. Blank = this month; a preset wins over dates."""

    preset = forms.ChoiceField(choices=[("", "Custom")] + [(k, v[0]) for k, v in PRESETS.items()], required=False)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, today: date | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.today = today or utc_today()

    def clean(self) -> dict:
        data = super().clean()
        default_start, default_end = this_month(self.today)
        if data.get("preset"):
            data["start"], data["end"] = PRESETS[data["preset"]][1](self.today)
        else:
            data["start"] = data.get("start") or default_start
            data["end"] = data.get("end") or max(default_end, data["start"])
        if data["start"] > data["end"]:
            raise forms.ValidationError("The start date must not be after the end date.")
        if (data["end"] - data["start"]).days >= MAX_DAYS:
            raise forms.ValidationError(f"Choose at most {MAX_DAYS} days.")
        return data


def date_range(params, today: date | None = None) -> tuple[DateRangeForm, date, date]:
    """The bound form and the range to show (this month when the input is invalid)."""
    form = DateRangeForm(params, today=today)
    if form.is_valid():
        return form, form.cleaned_data["start"], form.cleaned_data["end"]
    start, end = this_month(form.today)
    return form, start, end
