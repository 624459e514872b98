"""System checks for monitoring settings that would otherwise fail silently."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register

from .metrics import multiprocess_directory


@register()
def check_worker_metrics(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if not settings.ERPSYNC_WORKER_METRICS_PORT:
        return []
    problems: list[CheckMessage] = []
    if not settings.ERPSYNC_METRICS_TOKEN and not settings.ERPSYNC_MONITORING_NETWORKS:
        problems.append(
            Warning(
                "ERPSYNC_WORKER_METRICS_PORT is set, but nobody may read the metrics there.",
                hint="Set ERPSYNC_METRICS_TOKEN or ERPSYNC_MONITORING_NETWORKS; until then the worker answers 404.",
                id="erpsync.W010",
            )
        )
    if not multiprocess_directory():
        problems.append(
            Warning(
                "ERPSYNC_WORKER_METRICS_PORT is set, but PROMETHEUS_MULTIPROC_DIR is not.",
                hint="With the prefork pool (the default) jobs run in child processes: give each worker an empty "
                "directory of its own in PROMETHEUS_MULTIPROC_DIR, or its /metrics shows none of their connector calls.",
                id="erpsync.W011",
            )
        )
    return problems
