"""The audit trail's tables (gateway_admin.audit; docs/security/audit.md).

`AuditEntry` is one recorded change: who, when, from where, what, before and after
(secrets masked), chained to the entry before it by hashes. `AuditHead` is a single
row: the chain's last entry (so deleting the newest entries is found too) and its
anchor, the last entry pruned by retention (so the chain still verifies after pruning).

No foreign keys on purpose: an entry must never change after it is written (deleting
a user or a route must not rewrite the entries that name them), so who and what are
copied as plain values.
"""

from __future__ import annotations

from django.db import models

GENESIS_HASH = "0" * 64


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATE = "create", "created"
        UPDATE = "update", "changed"
        DELETE = "delete", "deleted"
        EVENT = "event", "event"

    class ActorType(models.TextChoices):
        USER = "user", "user (admin session)"
        TOKEN = "token", "management API token"
        COMMAND = "command", "management command"
        TASK = "task", "Celery task"
        ANONYMOUS = "anonymous", "not signed in"
        SYSTEM = "system", "the gateway itself"

    seq = models.BigIntegerField(unique=True, help_text="Position in the chain: 1, 2, 3, ... without gaps.")
    at = models.DateTimeField(db_index=True)
    actor_type = models.CharField("who (kind)", max_length=12, choices=ActorType.choices)
    actor = models.CharField("who", max_length=200, help_text="User name, token prefix, command or task name.")
    user_id = models.BigIntegerField(null=True, blank=True, help_text="The user's id when a user acted (copied, not linked).")
    username = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=20, help_text="admin, api, web, command, task or system.")
    remote_addr = models.CharField("client address", max_length=45, blank=True)
    source = models.CharField(max_length=300, blank=True, help_text="The request (method and path) or the command.")
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=100, help_text="app_label.model, e.g. billing.virtualkey.")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField("object", max_length=200, blank=True)
    # Canonical JSON text (sorted keys, no spaces), exactly as hashed: a JSON column
    # could renormalise numbers or key order and break the hash.
    before = models.TextField(blank=True, help_text="The changed fields before (JSON, secrets masked).")
    after = models.TextField(blank=True, help_text="The changed fields after (JSON, secrets masked).")
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [
            models.Index(fields=["object_type", "object_id", "seq"], name="audit_object"),
            models.Index(fields=["actor", "seq"], name="audit_actor"),
            models.Index(fields=["actor_type", "seq"], name="audit_actor_type"),
            models.Index(fields=["action", "seq"], name="audit_action"),
            models.Index(fields=["username", "seq"], name="audit_username"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor} {self.get_action_display()} {self.object_type} {self.object_repr}"


class AuditHead(models.Model):
    """One row (id 1): the newest entry and the retention anchor. Appenders lock it
    (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write lock), so the chain stays
    one line however many processes write."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    pruned_seq = models.BigIntegerField(default=0, help_text="The last entry removed by retention (0: none).")
    pruned_hash = models.CharField(max_length=64, default=GENESIS_HASH, help_text="Its hash: the next entry's prev_hash.")
    pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "audit chain head"

    def __str__(self) -> str:
        return f"audit head at #{self.last_seq}"
