# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the analyzer over mutated real snapshots: no counter finding without a delta, no crash on odd facts."""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import counters as _counters
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


# the counters of a snapshot (not drop_reasons: a recording over the interval, not a cumulative counter, so two
# equal snapshots of it are a recording that saw what it says)
PATHS = [p for p in _paths(BASE["host"]) if p[0] != "drop_reasons"]
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


# ------------------------------------------------------------------------------------------------
# severities a person can trust: every counter finding id, a few events, any traffic and interval
# ------------------------------------------------------------------------------------------------

def _snmp_paths() -> Dict[str, Tuple[List[Tuple[str, ...]], List[Tuple[str, ...]]]]:
    out = {}
    for fid, fields, den, _what, _why, _advice in _counters._SNMP:
        events = [("netstat", "snmp") + fields[0]]
        traffic = [("netstat", "snmp") + f for f in den or () if f not in fields]
        out[fid] = (events, traffic)
    return out


_ETH0 = ("netstat", "interfaces", "eth0", "stats")
# finding id -> (the counters its events are added to, the counters the traffic is added to)
EVENTS: Dict[str, Tuple[List[Tuple[Any, ...]], List[Tuple[Any, ...]]]] = dict(_snmp_paths(), **{
    "qdisc.drops": ([("tc", "qdiscs", 1, "stats", "drops")], [("tc", "qdiscs", 1, "stats", "packets")]),
    "netfilter.drop_hits": ([("iptables", "rulesets", 0, "tables", "filter", "chains", "FORWARD", "packets")], []),
    "conntrack.drop": ([("conntrack", "stat", "total", "drop")], []),
    "conntrack.early_drop": ([("conntrack", "stat", "total", "early_drop")], []),
    "conntrack.insert_failed": ([("conntrack", "stat", "total", "insert_failed")], []),
    "nic.rx_dropped": ([_ETH0 + ("rx_dropped",)], [_ETH0 + ("rx_packets",)]),
    "nic.rx_fifo": ([_ETH0 + ("rx_fifo_errors",)], [_ETH0 + ("rx_packets",)]),
    "nic.rx_missed": ([_ETH0 + ("rx_missed_errors",)], [_ETH0 + ("rx_packets",)]),
    "nic.rx_errors": ([_ETH0 + ("rx_errors",)], [_ETH0 + ("rx_packets",)]),
    "nic.tx_dropped": ([_ETH0 + ("tx_dropped",)], [_ETH0 + ("tx_packets",)]),
    "nic.tx_errors": ([_ETH0 + ("tx_errors",)], [_ETH0 + ("tx_packets",)]),
    "nic.driver_drops": ([("netstat", "interfaces", "eth0", "driver_stats", "rx_drops")], []),
    "softnet.dropped": ([("netstat", "softnet", 0, "dropped")], [("netstat", "softnet", 0, "processed")]),
    "softnet.time_squeeze": ([("netstat", "softnet", 0, "time_squeeze")], [("netstat", "softnet", 0, "processed")]),
    "tcp.attempt_fails": ([("netstat", "snmp", "Tcp", "AttemptFails")], [("netstat", "snmp", "Tcp", "ActiveOpens")]),
    "udp.in_errors": ([("netstat", "snmp", "Udp", "InErrors")], [("netstat", "snmp", "Udp", "InDatagrams")]),
})
# drop-reason findings: their events are the count of one (reason, location) of the host's drop_reasons layer
DROP_EVENTS = {
    "netfilter.drop_reason": ("NETFILTER_DROP", "nft_do_chain"), "qdisc.drop_reason": ("QDISC_DROP", "__dev_xmit_skb"),
    "nic.drop_reason": ("NOT_SPECIFIED", "do_xdp_generic"), "softnet.drop_reason": ("CPU_BACKLOG", "enqueue_to_backlog"),
    "ip.drop_reason": ("IP_RPFILTER", "ip_rcv_finish_core"), "tcp.drop_reason": ("TCP_OFO_DROP", "tcp_data_queue"),
    "udp.drop_reason": ("UDP_CSUM", "__udp4_lib_rcv"), "socket.drop_reason": ("SOCKET_RCVBUFF", "udp_queue_rcv_one_skb"),
    "socket.no_listener": ("NO_SOCKET", "__udp4_lib_rcv"), "drops.unexplained": ("NOT_SPECIFIED", "mydriver_poll"),
    "drops.noise": ("QUEUE_PURGE", "tcp_disconnect"),
}
EVENTS.update((fid, ([("drop_reasons", "events", 0, "count")], [])) for fid in DROP_EVENTS)
COUNTER_IDS = sorted(i for i, th in _analyze.THRESHOLDS.items() if "min_delta" in th)


def _add(doc: Any, path: Tuple[Any, ...], n: int) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] += n


def _pair(fid: str, events: int, traffic: int, seconds: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    before = copy.deepcopy(BASE["host"])
    before["timestamp"] = 1000.0
    after = copy.deepcopy(before)
    after["timestamp"] = 1000.0 + seconds
    if fid in DROP_EVENTS:
        reason, location = DROP_EVENTS[fid]
        for doc in (before, after):
            doc["drop_reasons"] = {"available": True, "scope": "host", "method": "hist", "duration": float(seconds), "lost": 0,
                                   "events": [{"reason": reason, "location": location, "count": 0}]}
    event_paths, traffic_paths = EVENTS[fid]
    for path in event_paths + traffic_paths:  # a counter the base snapshots lack (Icmp): zero in both
        for doc in (before, after):
            cur = doc
            for p in path[:-1]:
                cur = cur.setdefault(p, {}) if isinstance(cur, dict) else cur[p]
            if isinstance(cur, dict):
                cur.setdefault(path[-1], 0)
    for path in event_paths:
        _add(after, path, events)
    for path in traffic_paths:
        _add(after, path, traffic)
    return {"host": before}, {"host": after}


def test_every_counter_finding_id_has_an_event_recipe() -> None:
    assert set(COUNTER_IDS) == set(EVENTS)
    for fid in COUNTER_IDS:  # and the recipe makes that finding
        findings = _analyze.analyze_host(*_pair(fid, 50, 100, 5), None)
        assert fid in [f["id"] for f in findings], (fid, findings)


def _check_shares(findings: List[Dict[str, Any]]) -> None:
    for f in findings:
        ev = f["evidence"]
        if ev.get("percent") is None:
            assert ev.get("percent_lower") is None
            continue
        den = ev["denominator"]
        assert den["population"] >= ev["delta"] >= 1, f  # never over an empty (or smaller) denominator
        assert 0.0 <= ev["percent"] <= 100.0 and 0.0 <= ev["percent_lower"] <= ev["percent"], f


# thresholds a user may set, without touching the minimum event counts
USER_THRESHOLDS = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "warning_rate": st.one_of(st.none(), st.floats(0, 100)), "critical_rate": st.one_of(st.none(), st.floats(0, 100)),
    "warning_percent": st.one_of(st.none(), st.floats(0, 100)), "critical_percent": st.one_of(st.none(), st.floats(0, 100)),
}))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(COUNTER_IDS), st.integers(1, 2), st.integers(0, 10 ** 9), st.integers(1, 3600), USER_THRESHOLDS)
def test_one_or_two_events_are_never_above_info(fid: str, events: int, traffic: int, seconds: int, user: Any) -> None:
    thresholds = {fid: user} if user else None
    findings = _analyze.analyze_host(*_pair(fid, events, traffic, seconds), None, thresholds)
    assert all(f["severity"] == "info" for f in findings if f["kind"] in ("counter", "symptom")), findings
    _check_shares(findings)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(COUNTER_IDS), st.integers(1, 10 ** 6), st.integers(0, 10 ** 9), st.integers(1, 600))
def test_shares_never_exceed_100_percent_nor_use_an_empty_denominator(fid: str, events: int, traffic: int, seconds: int) -> None:
    _check_shares(_analyze.analyze_host(*_pair(fid, events, traffic, seconds), None))


def _worst_rank(findings: List[Dict[str, Any]], fid: str) -> int:
    return max([_analyze.SEVERITIES.index(f["severity"]) for f in findings if f["id"] == fid] or [-1])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(COUNTER_IDS), st.integers(1, 400), st.integers(0, 10 ** 5), st.integers(1, 60), st.integers(2, 40))
def test_more_events_at_the_same_rate_and_share_never_lower_the_severity(
        fid: str, events: int, traffic: int, seconds: int, times: int) -> None:
    """``times`` as long an interval, with ``times`` as many events and as much traffic: same rate, same share."""
    few = _worst_rank(_analyze.analyze_host(*_pair(fid, events, traffic, seconds), None), fid)
    many = _worst_rank(_analyze.analyze_host(*_pair(fid, events * times, traffic * times, seconds * times), None), fid)
    assert many >= few


@given(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.booleans())
def test_share_bounds(events: int, traffic: int, includes: bool) -> None:
    sh = _analyze.share(events, traffic, includes)
    if sh["population"] in (None, 0):
        assert sh["percent"] is None and sh["percent_lower"] is None
    else:
        assert sh["population"] >= events and 0.0 <= sh["percent_lower"] <= sh["percent"] <= 100.0
