"""The sync rule for one field (docs/sync-semantics.md): compare both sides with the baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.utils.translation import gettext as _

from ..choices import Direction


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # no baseline yet: the link is new, or the field was mapped since the last sync

Action = Literal["none", "agree", "to_crm", "to_erp", "skip"]


@dataclass(frozen=True)
class Decision:
    """What to do with one field: nothing, accept that both agree, copy one way, or skip (with the reason)."""

    action: Action
    value: Any = None
    reason: str = ""


def decide(crm: Any, erp: Any, base: Any, direction: str, crm_ranks_higher: bool, connection_name: str) -> Decision:
    """The decision for one field, given the CRM value, the ERP value and the baseline (or MISSING)."""
    if crm == erp:
        return Decision("none") if crm == base else Decision("agree", crm)
    crm_changed = base is MISSING or crm != base
    erp_changed = base is MISSING or erp != base
    if crm_changed and not erp_changed:
        want: Action = "to_erp"
        reason = _("changed in the CRM")
    elif erp_changed and not crm_changed:
        want = "to_crm"
        reason = _("changed in %(erp)s") % {"erp": connection_name}
    else:
        want = "to_erp" if crm_ranks_higher else "to_crm"
        winner = _("the CRM") if crm_ranks_higher else connection_name
        loser_value = erp if crm_ranks_higher else crm
        reason = _("conflict: %(winner)s ranks higher (the other side had %(value)s)") % {
            "winner": winner,
            "value": "—" if loser_value is None else repr(loser_value),
        }
    allowed = direction == Direction.BOTH or (want == "to_erp") == (direction == Direction.CRM_TO_ERP)
    if not allowed:
        label = dict(Direction.choices).get(direction, direction)
        return Decision(
            "skip", None, _("skipped: the direction is %(direction)s (%(why)s)") % {"direction": label, "why": reason}
        )
    return Decision(want, crm if want == "to_erp" else erp, reason)


def decide_resync(crm: Any, erp: Any, direction: str, keep_non_blank: bool) -> Decision:
    """Resync from CRM: baselines are ignored and the CRM value is forced where the direction allows it."""
    if direction not in (Direction.CRM_TO_ERP, Direction.BOTH) or crm == erp:
        return Decision("none") if crm == erp else Decision("skip", None, _("skipped: the direction is ERP → CRM"))
    if keep_non_blank and crm is None and erp is not None:
        return Decision("skip", None, _("skipped: a blank CRM value does not overwrite the ERP's value"))
    return Decision("to_erp", crm, _("forced by resync from CRM"))
