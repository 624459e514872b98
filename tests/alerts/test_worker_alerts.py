"""The evaluation as production runs it: a Celery worker process takes the task from the broker and mails the alert
through the mail server its environment names."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from kombu import Connection

from alerts.choices import Condition
from alerts.models import Incident
from alerts.tasks import evaluate_alerts
from connections.choices import RunKind, RunStatus
from connections.models import SyncRun
from erpsync_admin.celery import app

from ..conftest import database_url, venv_bin, wait_for
from .conftest import MailServer, make_connection, watch_only


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_runs_the_evaluation_and_mails_the_alert(
    start_process: Any, mail_server: MailServer, tmp_path: Path
) -> None:
    configured = os.environ.get("CELERY_BROKER_URL", "")
    broker = configured if configured.startswith("redis") else f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    queue = f"alerts-{uuid.uuid4().hex[:8]}"
    watch_only(Condition.RUN_FAILED)
    connection = make_connection()
    SyncRun.objects.create(
        connection=connection,
        kind=RunKind.SYNC_ALL,
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error="SaveActors: HTTP 500",
    )
    worker = start_process(
        [
            venv_bin("celery"),
            "-A",
            "erpsync_admin",
            "worker",
            "--pool=solo",
            f"--queues={queue}",
            f"--hostname={queue}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        env={
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker,
            "EMAIL_HOST": mail_server.host,
            "EMAIL_PORT": str(mail_server.port),
            "DEFAULT_FROM_EMAIL": "alerts@crm.example.com",
        },
        name="worker",
    )
    with Connection(broker) as conn:
        app.send_task(evaluate_alerts.name, queue=queue, connection=conn)
    try:
        wait_for(lambda: mail_server.received, 60, "the alert e-mail")
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None
    [mail] = mail_server.received
    assert mail.sender == "alerts@crm.example.com"
    assert mail.subject == "[erpsync] Problem: Sync all of Demo ERP – Sweden failed"
    assert Incident.objects.get().deliveries.get().status == "sent"
