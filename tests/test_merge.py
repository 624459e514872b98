"""The sync rule, as a table: every combination of changed/unchanged sides, direction and priority."""

from __future__ import annotations

import pytest

from connections.sync.merge import MISSING, decide, decide_resync

B, E, C = "both", "erp_to_crm", "crm_to_erp"


@pytest.mark.parametrize(
    ("crm", "erp", "base", "direction", "crm_first", "action", "value"),
    [
        # neither side changed
        ("a", "a", "a", B, False, "none", None),
        # one side changed
        ("new", "a", "a", B, False, "to_erp", "new"),
        ("new", "a", "a", C, False, "to_erp", "new"),
        ("new", "a", "a", E, False, "skip", None),
        ("a", "new", "a", B, False, "to_crm", "new"),
        ("a", "new", "a", E, False, "to_crm", "new"),
        ("a", "new", "a", C, False, "skip", None),
        # both changed to the same value
        ("x", "x", "a", B, False, "agree", "x"),
        ("x", "x", "a", E, True, "agree", "x"),
        # both changed differently: priority decides, direction permitting
        ("c", "e", "a", B, False, "to_crm", "e"),
        ("c", "e", "a", B, True, "to_erp", "c"),
        ("c", "e", "a", E, False, "to_crm", "e"),
        ("c", "e", "a", E, True, "skip", None),
        ("c", "e", "a", C, True, "to_erp", "c"),
        ("c", "e", "a", C, False, "skip", None),
        # a new link (no baseline): equal values agree, different ones are a conflict
        ("a", "a", MISSING, B, False, "agree", "a"),
        ("c", "e", MISSING, B, False, "to_crm", "e"),
        ("c", "e", MISSING, B, True, "to_erp", "c"),
        # emptied on one side is a change like any other
        (None, "a", "a", B, False, "to_erp", None),
        ("a", None, "a", B, False, "to_crm", None),
    ],
)
def test_the_rule(
    crm: object, erp: object, base: object, direction: str, crm_first: bool, action: str, value: object
) -> None:
    decision = decide(crm, erp, base, direction, crm_first, "Demo ERP")
    assert (decision.action, decision.value) == (action, value)
    if action == "skip":
        assert decision.reason.startswith("skipped: the direction is")


def test_a_conflict_names_the_winner_and_the_losing_value() -> None:
    decision = decide("Fjällbygg Nord AB", "Fjällbygg AB (Umeå)", "Fjällbygg AB", B, False, "Demo ERP – Sweden")
    assert decision.reason == "conflict: Demo ERP – Sweden ranks higher (the other side had 'Fjällbygg Nord AB')"


@pytest.mark.parametrize(
    ("crm", "erp", "direction", "keep", "action"),
    [
        ("c", "e", B, False, "to_erp"),
        ("c", "e", C, False, "to_erp"),
        ("c", "e", E, False, "skip"),
        (None, "e", B, True, "skip"),
        (None, "e", B, False, "to_erp"),
        ("c", "c", B, False, "none"),
    ],
)
def test_resync_forces_the_crm_value_where_allowed(
    crm: object, erp: object, direction: str, keep: bool, action: str
) -> None:
    assert decide_resync(crm, erp, direction, keep).action == action
