"""Signals other apps may listen to (providers imports none of them)."""

from django.dispatch import Signal

# Sent after a Provider or Model was changed through the admin, with `request` and
# `instance`; routing uses it to warn about routes the change left unservable.
edited_in_admin = Signal()
