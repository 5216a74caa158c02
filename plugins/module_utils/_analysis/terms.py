# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The analyzer's vocabulary: severities, layers, the fact layer each is read from, the remediations, and the fact
rows each remediation's findings are made of.

Kept apart from analyze.py (which uses every name here) so that the remediate module can tell on the target, without
the analyzer, whether there is anything a remediation could remove: module code reaches a target in a zip and is
compiled on every run there, and the analyzer is the largest module to compile. Pure, no I/O.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional, Tuple

SEVERITIES = ("info", "warning", "critical")
# "drops": the kernel's drop events (the drop_reasons fact layer): its findings are those no other layer explains
# (drops.unexplained, events the recording lost included) and those that are not loss (drops.noise); its coverage
# says whether the drop events were recorded at all, so a grid cell "." there means "recorded, and every drop event
# named by a finding" (docs/drop-reasons.md). The reasons of real loss are findings of their family's layer.
LAYERS = ("nic", "softnet", "qdisc", "ip", "tcp", "udp", "socket", "netfilter", "conntrack", "drops")
# which fact layer (packetloss_facts' gather_subset) each analyzer layer is read from
FACT_LAYER = {"nic": "netstat", "softnet": "netstat", "qdisc": "tc", "ip": "netstat", "tcp": "netstat",
              "udp": "netstat", "socket": "netstat", "netfilter": "iptables", "conntrack": "conntrack",
              "drops": "drop_reasons"}
REMEDIATIONS = ("netem", "random_drop")


def severity_rank(severity: Optional[str]) -> int:
    """0 info, 1 warning, 2 critical; -1 for anything else (no finding, n/a)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def netem_qdisc(row: Dict[str, Any]) -> bool:
    """A qdisc row (tc facts) the analyzer makes a qdisc.netem finding of: a netem qdisc, whatever its options."""
    return row.get("kind") == "netem"


def random_drop_rule(row: Dict[str, Any]) -> bool:
    """A rule row (iptables facts) the analyzer makes a netfilter.random_drop finding of: one the netfilter reader
    flags random_drop (netfilter.is_random_drop, the one definition)."""
    return bool(row.get("random_drop"))


# remediation -> (fact layer, key of its rows there, the rows its findings are made of): the analyzer makes a finding
# that carries the remediation from such a row only, so where a target has none there is nothing it could remove
REMEDIABLE_ROWS: Dict[str, Tuple[str, str, Callable[[Dict[str, Any]], bool]]] = {
    "netem": ("tc", "qdiscs", netem_qdisc),
    "random_drop": ("iptables", "rules", random_drop_rule),
}


def remediable_rows(facts: Any, kinds: Iterable[str]) -> bool:
    """Whether one target's facts hold a row a finding of one of the remediations ``kinds`` is made of."""
    for kind in kinds:
        layer, key, made_of = REMEDIABLE_ROWS[kind]
        rows = ((facts or {}).get(layer) or {}).get(key) if isinstance(facts, dict) else None
        if isinstance(rows, list) and any(isinstance(r, dict) and made_of(r) for r in rows):
            return True
    return False
