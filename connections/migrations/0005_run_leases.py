from datetime import timedelta

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Now


def lease_running_runs(apps, schema_editor):
    """Runs left running by the previous version keep its deadline: they are taken back 16 minutes (the old
    ERPSYNC_RUN_STUCK_AFTER default) after they started, in case a worker of that version is still at one."""
    SyncRun = apps.get_model("connections", "SyncRun")
    SyncRun.objects.filter(status="running", started_at__isnull=False).update(
        lease_expires_at=models.ExpressionWrapper(
            F("started_at") + timedelta(minutes=16), output_field=models.DateTimeField()
        )
    )
    SyncRun.objects.filter(status="running", started_at__isnull=True).update(lease_expires_at=Now())


class Migration(migrations.Migration):

    dependencies = [
        ("connections", "0004_run_send_failed_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="checkpoint",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddIndex(
            model_name="syncrun",
            index=models.Index(fields=["status", "lease_expires_at"], name="connections_run_sweep"),
        ),
        migrations.RunPython(lease_running_runs, migrations.RunPython.noop),
    ]
