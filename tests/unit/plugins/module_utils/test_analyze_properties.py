# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the analyzer over mutated real snapshots: no counter finding without a delta, no crash on odd facts."""
from __future__ import annotations

import copy
from typing import Any, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.netdiag.packetloss.plugins.module_utils import _analyze
from test_analyze import BASE


def _paths(doc: Any, prefix: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


PATHS = _paths(BASE["host"])
# what facts can really hold where a value is expected: nothing (None, or the key missing), or another number
DELETE = object()
ODD = st.one_of(st.none(), st.just(DELETE), st.integers(-5, 10 ** 12), st.floats(0, 1e9), st.booleans())


def _set(doc: Any, path: Tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    if value is DELETE:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), ODD), max_size=6))
def test_odd_facts_never_crash_and_equal_snapshots_have_no_counter_findings(mutations: List[Tuple[Any, Any]]) -> None:
    snap = copy.deepcopy(BASE["host"])
    for path, value in mutations:
        try:
            _set(snap, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    findings = _analyze.analyze_host({"host": snap}, {"host": copy.deepcopy(snap)}, 5)
    assert all(f["kind"] in ("config", "gauge") for f in findings), findings


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["ListenOverflows", "TCPSynRetrans", "TCPTimeouts", "EmbryonicRsts"]),
                       st.integers(0, 10 ** 6), min_size=1), st.floats(0.1, 3600))
def test_counter_findings_scale_with_the_interval(increments: Any, seconds: float) -> None:
    before = copy.deepcopy(BASE["host"])
    before["timestamp"] = 1000.0
    after = copy.deepcopy(before)
    after["timestamp"] = 1000.0 + seconds
    for name, inc in increments.items():
        after["netstat"]["snmp"]["TcpExt"][name] += inc
    for f in _analyze.analyze_host({"host": before}, {"host": after}, None):
        ev = f["evidence"]
        assert ev["delta"] > 0 and ev["rate"] == round(ev["delta"] / round(seconds, 3), 3)
