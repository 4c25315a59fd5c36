"""The playground's permission. The playground has no data of its own (its usage is
the user's playground key's, in billing), so the permission sits on a model without
a table: Django creates a content type and the permission, never a table."""

from __future__ import annotations

from django.db import models

PLAYGROUND_PERMISSION = "streaming.use_playground"


class Playground(models.Model):
    """Holds `streaming.use_playground` (granted by the "Playground users" role,
    gateway_admin.roles). Never queried."""

    class Meta:
        managed = False
        default_permissions = ()  # no add/change/delete/view: there is nothing to edit
        permissions = [("use_playground", "Can use the playground")]
        verbose_name = "playground"
