"""Demo ERP answers as slowly as a real ERP when asked to (--latency-ms), and still serves calls side by side."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from connectors.client import ConnectorClient
from connectors.demo.__main__ import parser
from connectors.demo.latency import Latency

from ..conftest import in_process_demo, start_demo


def timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_a_latency_is_milliseconds_or_a_range_of_them() -> None:
    assert parser().parse_args(["--latency-ms", "250"]).latency_ms == Latency(250, 250)
    assert parser().parse_args(["--latency-ms", "1000-3000"]).latency_ms == Latency(1000, 3000)
    assert parser().parse_args([]).latency_ms is None
    assert str(Latency.of((1000, 3000))) == "1000–3000 ms" and str(Latency.of(0)) == "0 ms"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("-5", "a latency cannot be negative ('-5')"),
        ("fast", "'fast' is not a latency; give milliseconds as N or MIN-MAX, e.g. 200 or 1000-3000"),
        ("1.5", "'1.5' is not a latency"),
        ("3000-1000", "the lower bound 3000 is above the upper bound 1000"),
        ("900000", "900000 ms is more than the most allowed, 600000 ms"),
    ],
)
def test_a_wrong_latency_is_refused_on_the_command_line_with_the_reason(
    given: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["--latency-ms", given])
    assert exit_.value.code == 2
    assert f"error: argument --latency-ms: {message}" in capsys.readouterr().err


def test_a_slow_demo_erp_process_answers_every_call_late_but_serves_calls_side_by_side(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, seed_actors=0, latency_ms="500")
    try:
        # The health page is not a protocol call: it answers at once, so that a slow ERP still shows as up.
        assert timed(lambda: httpx.get(f"{demo.url}/v1/health", timeout=5).raise_for_status()) < 0.4
        with ConnectorClient(demo.url, demo.secret) as client:
            assert timed(client.get_config_data) >= 0.5
            # Four calls at once from one client (as the ERP tab's search makes them): each waits 500 ms, together
            # they take about as long as one, not the 2 s they would take one after another.
            with ThreadPoolExecutor(4) as pool:
                started = time.monotonic()
                answers = list(pool.map(lambda _: client.get_config_data().data, range(4)))
                together = time.monotonic() - started
        assert len(answers) == 4 and all(a.fields for a in answers)
        assert 0.5 <= together < 1.25, f"4 calls of 500 ms took {together:.2f} s together"
    finally:
        demo.process.stop()


def test_an_in_process_demo_erp_waits_a_random_time_in_its_range_for_each_call(tmp_path: Path) -> None:
    with (
        in_process_demo(tmp_path, seed_actors=0, latency_ms=(200, 400)) as demo,
        ConnectorClient(demo.url, demo.secret) as client,
    ):
        waits = [timed(client.get_config_data) for _ in range(4)]
    assert all(0.2 <= wait < 0.7 for wait in waits), waits
    assert len({round(wait, 3) for wait in waits}) > 1, "every call waited exactly as long"
