"""The protocol test kit: ``python -m connectors.conformance URL --secret S --config JSON`` checks a live
connector against the whole of protocol v1 and prints a pass/fail report."""

from .kit import Check, Report, run_conformance

__all__ = ["Check", "Report", "run_conformance"]
