"""The audit trail's tables (gateway_admin.models; docs/security/audit.md) and the
chain's head row (id 1: no entry yet, the genesis hash)."""

from django.db import migrations, models

GENESIS_HASH = "0" * 64


def create_head(apps, schema_editor):
    AuditHead = apps.get_model("gateway_admin", "AuditHead")
    AuditHead.objects.using(schema_editor.connection.alias).get_or_create(
        pk=1, defaults={"last_seq": 0, "last_hash": GENESIS_HASH, "pruned_seq": 0, "pruned_hash": GENESIS_HASH})


class Migration(migrations.Migration):

    dependencies = [
        ('gateway_admin', '0001_roles'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('last_seq', models.BigIntegerField(default=0)),
                ('last_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                ('pruned_seq', models.BigIntegerField(default=0, help_text='The last entry removed by retention (0: none).')),
                ('pruned_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', help_text="Its hash: the next entry's prev_hash.", max_length=64)),
                ('pruned_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name': 'audit chain head',
            },
        ),
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('seq', models.BigIntegerField(help_text='Position in the chain: 1, 2, 3, ... without gaps.', unique=True)),
                ('at', models.DateTimeField(db_index=True)),
                ('actor_type', models.CharField(choices=[('user', 'user (admin session)'), ('token', 'management API token'), ('command', 'management command'), ('task', 'Celery task'), ('anonymous', 'not signed in'), ('system', 'the gateway itself')], max_length=12, verbose_name='who (kind)')),
                ('actor', models.CharField(help_text='User name, token prefix, command or task name.', max_length=200, verbose_name='who')),
                ('user_id', models.BigIntegerField(blank=True, help_text="The user's id when a user acted (copied, not linked).", null=True)),
                ('username', models.CharField(blank=True, max_length=150)),
                ('via', models.CharField(help_text='admin, api, web, command, task or system.', max_length=20)),
                ('remote_addr', models.CharField(blank=True, max_length=45, verbose_name='client address')),
                ('source', models.CharField(blank=True, help_text='The request (method and path) or the command.', max_length=300)),
                ('action', models.CharField(choices=[('create', 'created'), ('update', 'changed'), ('delete', 'deleted'), ('event', 'event')], max_length=10)),
                ('object_type', models.CharField(help_text='app_label.model, e.g. billing.virtualkey.', max_length=100)),
                ('object_id', models.CharField(blank=True, max_length=64)),
                ('object_repr', models.CharField(blank=True, max_length=200, verbose_name='object')),
                ('before', models.TextField(blank=True, help_text='The changed fields before (JSON, secrets masked).')),
                ('after', models.TextField(blank=True, help_text='The changed fields after (JSON, secrets masked).')),
                ('prev_hash', models.CharField(max_length=64)),
                ('entry_hash', models.CharField(max_length=64)),
            ],
            options={
                'verbose_name': 'audit entry',
                'verbose_name_plural': 'audit trail',
                'ordering': ['-seq'],
                'indexes': [models.Index(fields=['object_type', 'object_id', 'seq'], name='audit_object'), models.Index(fields=['actor', 'seq'], name='audit_actor'), models.Index(fields=['actor_type', 'seq'], name='audit_actor_type'), models.Index(fields=['action', 'seq'], name='audit_action'), models.Index(fields=['username', 'seq'], name='audit_username')],
            },
        ),
        migrations.RunPython(create_head, migrations.RunPython.noop),
    ]
