from django.db import migrations


def create_roles(apps, schema_editor):
    from gateway_admin.roles import sync_roles

    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("providers", "0005_price_history"),
        ("billing", "0012_usage_endpoint_and_prompt_cache"),
        ("guardrails", "0001_initial"),
        ("routing", "0006_route_trace_content"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
