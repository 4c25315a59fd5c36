"""The role groups (gateway_admin.roles) with their permissions.

Django creates permissions only after a whole `migrate` run (post_migrate), so this
migration creates those of the models that exist at this point first, then grants
them. Permissions of models added by later migrations (the audit trail's, for one)
are granted by the post-migrate sync (gateway_admin.roles.sync_after_migrate).

Reversing it leaves the groups alone: they may hold people and hand-made changes.
"""

from django.db import migrations


def create_roles(apps, schema_editor):
    from gateway_admin.roles import create_all_permissions, sync_roles

    db = schema_editor.connection.alias
    create_all_permissions(apps, using=db)
    sync_roles(apps, using=db)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("providers", "0005_price_history"),
        ("billing", "0012_usage_endpoint_and_prompt_cache"),
        ("guardrails", "0001_initial"),
        ("routing", "0006_route_trace_content"),
        ("streaming", "0001_playground_permission"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
