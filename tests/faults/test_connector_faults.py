"""A connector that is down, hangs or answers garbage in the middle of an automatic run, with a real worker.

Passing faults (down, hanging, a trickle, a proxy's 503) put the run back in the queue with the reason, and
the retry finishes it once the connector behaves. Lasting faults (a 500 page, broken JSON, a huge body) fail
the run with a readable reason; the next automatic run, which starts from the same change-feed cursor,
brings both sides into step. Either way nothing is lost, half-applied or applied twice.
"""

from __future__ import annotations

from typing import Any

import pytest

from connections.choices import RunStatus
from connections.models import SyncChunk, SyncRun

from ..conftest import STOP_GRACE, wait_for
from .conftest import Scenario, scenario_for, start_worker, wait_until_ended
from .proxy import Fault, FaultyConnector

pytestmark = pytest.mark.django_db(transaction=True)

GET, SAVE = "/v1/get-actors", "/v1/save-actors"


def retried_with(run: SyncRun, words: str) -> SyncRun | None:
    """The run, or its part, is back in the queue after a failed attempt, and the run says why."""
    run.refresh_from_db()
    waiting = run.status == RunStatus.QUEUED or SyncChunk.objects.filter(run=run, status=RunStatus.QUEUED).exists()
    return run if waiting and run.attempts >= 1 and words in run.error else None


def attempts(run: SyncRun) -> int:
    """The most attempts at the run (a fault met while reading the change feed) or at its part (met while syncing
    its links; automatic runs here have one part)."""
    return max([run.attempts, *SyncChunk.objects.filter(run=run).values_list("attempts", flat=True)])


@pytest.mark.parametrize(
    ("fault", "path", "words", "name_sent_unheard"),
    [
        (Fault("hang", times=99, seconds=4), GET, "no answer within the timeout", False),
        # The ERP saves the names, then its answer never comes: the retry must not send or log them twice.
        (Fault("hang", times=99, seconds=4, after_forwarding=True), SAVE, "no answer within the timeout", True),
        (Fault("trickle", times=99, seconds=4), GET, "no complete answer within 2 s", False),
        (Fault("html503", times=99), SAVE, "HTTP 503 (text/html) with a body that is not JSON", False),
    ],
    ids=["hanging", "hanging-after-saving", "slow-trickle", "proxy-503-page"],
)
def test_a_passing_fault_is_retried_and_the_run_finishes_once_the_connector_behaves(
    worker: Any,
    faulty: FaultyConnector,
    demo_connector: Any,
    fault: Fault,
    path: str,
    words: str,
    name_sent_unheard: bool,
) -> None:
    scenario = scenario_for(demo_connector, faulty.url)
    scenario.change_both_sides("retried")
    faulty.fail(path, fault)
    run = scenario.automatic_run()
    waiting = wait_for(lambda: retried_with(run, words), 60, f"the run to wait for a retry, saying {words!r}")
    assert waiting.error.startswith(("GetActors", "SaveActors")), waiting.error  # names the operation
    faulty.heal()
    done = wait_until_ended(run, worker)
    assert (done.status, done.error) == (RunStatus.SUCCEEDED, "")
    # Fields changed: each record's phone, from the ERP, and its name, from the CRM, unless the ERP had applied the
    # names before its answer was lost.
    assert attempts(done) >= 2 and done.changed == (3 if name_sent_unheard else 6)
    scenario.assert_converged(run, name_sent_unheard)


def test_a_connector_that_is_down_is_waited_for_and_the_run_finishes_when_it_is_back(
    worker: Any, faulty: FaultyConnector, demo_connector: Any
) -> None:
    scenario = scenario_for(demo_connector, faulty.url)
    scenario.change_both_sides("down")
    faulty.stop()
    run = scenario.automatic_run()
    wait_for(lambda: retried_with(run, f"cannot reach {faulty.url}"), 60, "the run to wait for the connector")
    faulty.start()
    done = wait_until_ended(run, worker)
    assert done.status == RunStatus.SUCCEEDED and attempts(done) >= 2
    scenario.assert_converged(run)


@pytest.mark.parametrize(
    ("fault", "path", "words", "name_sent_unheard"),
    [
        (Fault("html500"), GET, "GetActors: HTTP 500 (text/html) with a body that is not JSON", False),
        (
            Fault("invalid_json", after_forwarding=True),
            SAVE,
            "SaveActors: HTTP 200 (application/json) with a body that is not JSON",
            True,
        ),
        (Fault("huge"), GET, "GetActors: the answer is more than 16777216 bytes; the limit is 16777216", False),
    ],
    ids=["500-page", "invalid-json-after-saving", "huge-body"],
)
def test_a_lasting_fault_fails_the_run_readably_and_the_next_automatic_run_catches_up(
    worker: Any,
    faulty: FaultyConnector,
    demo_connector: Any,
    fault: Fault,
    path: str,
    words: str,
    name_sent_unheard: bool,
) -> None:
    scenario: Scenario = scenario_for(demo_connector, faulty.url)
    scenario.change_both_sides("lasting")
    faulty.fail(path, fault)
    failed = wait_until_ended(scenario.automatic_run(), worker)
    assert failed.status == RunStatus.FAILED and failed.attempts == 1
    assert failed.error.startswith(words), failed.error
    # Nothing of the failed run is half-recorded in the CRM: its writes are one transaction per batch.
    assert failed.changed == 0
    assert faulty.injected == [f"{fault.kind} {path}"]
    retry = wait_until_ended(scenario.automatic_run(), worker)
    assert retry.status == RunStatus.SUCCEEDED, retry.error
    scenario.assert_converged(failed, name_sent_unheard)


def test_a_run_held_past_the_jobs_time_limit_is_stopped_with_that_reason(
    redis_queue: str, faulty: FaultyConnector, demo_connector: Any, tmp_path: Any, settings: Any
) -> None:
    """A prefork worker, as in production (time limits need it): the soft limit stops the run, not the hard
    one that would kill the process. The limits travel with the message, so the sender has them too."""
    scenario = scenario_for(demo_connector, faulty.url)
    scenario.change_both_sides("limit")
    faulty.fail(GET, Fault("hang", seconds=20))
    limits = {"CELERY_TASK_SOFT_TIME_LIMIT": "5", "CELERY_TASK_TIME_LIMIT": "15", "ERPSYNC_JOB_TIMEOUT": "60"}
    worker = start_worker(tmp_path / "worker.log", pool="prefork", **limits)
    settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT = 5, 15
    try:
        stopped = wait_until_ended(scenario.automatic_run(), worker)
        expected = (RunStatus.FAILED, "The run was stopped after 5 s, the time limit of a job.")
        assert (stopped.status, stopped.error) == expected, worker.output()[-2000:]
        faulty.heal()
        assert wait_until_ended(scenario.automatic_run(), worker).status == RunStatus.SUCCEEDED
    finally:
        worker.stop(STOP_GRACE)
    scenario.assert_converged(stopped)
