"""The sync rule for one field (docs/sync-semantics.md): compare both sides with the baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.utils.translation import gettext_noop as N_

from .. import said
from ..choices import Direction


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # no baseline yet: the link is new, or the field was mapped since the last sync

Action = Literal["none", "agree", "to_crm", "to_erp", "skip", "hold"]


@dataclass(frozen=True)
class Decision:
    """What to do with one field: nothing, accept that both agree, copy one way, skip (with the reason), or hold a
    conflict for review (neither side is written)."""

    action: Action
    value: Any = None
    reason_said: said.Message | None = None  # why, for each reader's language (connections.said)

    @property
    def reason(self) -> str:
        """Why, in the active language (the worker's, as the sync log's text keeps it)."""
        return said.render(self.reason_said) if self.reason_said else ""


# The directions' names, as messages (Direction's labels are lazy strings, not data).
DIRECTION_NAMES = {
    Direction.ERP_TO_CRM.value: N_("ERP → CRM"),
    Direction.CRM_TO_ERP.value: N_("CRM → ERP"),
    Direction.BOTH.value: N_("Both ways"),
}


def decide(
    crm: Any,
    erp: Any,
    base: Any,
    direction: str,
    crm_ranks_higher: bool,
    connection_name: str,
    hold: bool = False,
) -> Decision:
    """The decision for one field, given the CRM value, the ERP value and the baseline (or MISSING). ``hold``: the
    field holds conflicts for review, so a conflict on a both-ways field with a known baseline is held, not decided."""
    if crm == erp:
        return Decision("none") if crm == base else Decision("agree", crm)
    crm_changed = base is MISSING or crm != base
    erp_changed = base is MISSING or erp != base
    if crm_changed and not erp_changed:
        want: Action = "to_erp"
        reason = said.msg(N_("changed in the CRM"))
    elif erp_changed and not crm_changed:
        want = "to_crm"
        reason = said.msg(N_("changed in %(erp)s"), erp=connection_name)
    elif hold and base is not MISSING and direction == Direction.BOTH:
        return Decision("hold", None, said.msg(HELD))
    else:
        want = "to_erp" if crm_ranks_higher else "to_crm"
        winner = said.msg(N_("the CRM")) if crm_ranks_higher else connection_name
        loser_value = erp if crm_ranks_higher else crm
        reason = said.msg(
            N_("conflict: %(winner)s ranks higher (the other side had %(value)s)"),
            winner=winner,
            value="—" if loser_value is None else repr(loser_value),
        )
    allowed = direction == Direction.BOTH or (want == "to_erp") == (direction == Direction.CRM_TO_ERP)
    if not allowed:
        name = DIRECTION_NAMES.get(direction)
        return Decision(
            "skip",
            None,
            said.msg(
                N_("skipped: the direction is %(direction)s (%(why)s)"),
                direction=said.msg(name) if name else direction,
                why=reason,
            ),
        )
    return Decision(want, crm if want == "to_erp" else erp, reason)


HELD = N_("held for review")


def resolved(crm: Any, erp: Any, chosen: Any) -> list[Decision]:
    """A held conflict someone resolved: ``chosen`` is written to each side that does not hold it yet (both, for an
    edited value); nothing to write means both sides agree on it."""
    reason = said.msg(N_("conflict resolved by review"))
    writes: tuple[tuple[Action, Any], ...] = (("to_crm", crm), ("to_erp", erp))
    decisions = [Decision(action, chosen, reason) for action, value in writes if value != chosen]
    return decisions or [Decision("agree", chosen)]


def decide_resync(crm: Any, erp: Any, direction: str, keep_non_blank: bool) -> Decision:
    """Resync from CRM: baselines are ignored and the CRM value is forced where the direction allows it."""
    if direction not in (Direction.CRM_TO_ERP, Direction.BOTH) or crm == erp:
        if crm == erp:
            return Decision("none")
        return Decision("skip", None, said.msg(N_("skipped: the direction is ERP → CRM")))
    if keep_non_blank and crm is None and erp is not None:
        return Decision("skip", None, said.msg(N_("skipped: a blank CRM value does not overwrite the ERP's value")))
    return Decision("to_erp", crm, said.msg(N_("forced by resync from CRM")))
