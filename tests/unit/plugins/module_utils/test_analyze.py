# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_analyze against cases/analyze.yml: before/after snapshots built from real facts, expected findings out."""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import terms as _terms

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name: str) -> Any:
    with open(os.path.join(HERE, "cases", name)) as f:
        return yaml.safe_load(f)


BASE = load("analyze_base.yml")
CASES = load("analyze.yml")["cases"]
T0 = 1795740662.0


def patch(doc: Dict[str, Any], changes: Optional[Dict[str, Any]]) -> None:
    """Apply {dotted.path: value} (numbers index lists; a trailing + appends to a list)."""
    for path, value in (changes or {}).items():
        append = path.endswith("+")
        keys = path.rstrip("+").split(".")
        cur: Any = doc
        for key in keys[:-1]:
            cur = cur[int(key)] if isinstance(cur, list) else cur.setdefault(key, {})
        last = keys[-1]
        value = copy.deepcopy(value)
        if append:
            cur.setdefault(last, []).extend(value)
        elif isinstance(cur, list):
            cur[int(last)] = value
        else:
            cur[last] = value


def snapshot(label: str, spec: Dict[str, Any], which: str, timestamp: Optional[float]) -> Dict[str, Any]:
    base = spec.get("base", "host" if label == "host" else "container")
    doc = copy.deepcopy(BASE[base])
    kind, name = label.split(":", 1) if ":" in label else (label, "")
    doc["target"] = {"kind": kind, "name": name or "host", "label": label, "netns_path": None, "pid": None}
    if timestamp is None:
        doc.pop("timestamp", None)
    else:
        doc["timestamp"] = timestamp
    patch(doc, spec.get("both"))
    patch(doc, spec.get(which))
    ipt = doc.get("iptables")
    if isinstance(ipt, dict) and "rules" in ipt:
        ipt["random_drop_rules"] = [r for r in ipt["rules"] if r.get("random_drop")]
        ipt["rule_count"] = len(ipt["rules"])
    return doc


def build(case: Dict[str, Any]):
    interval = case.get("interval", 5)
    before: Dict[str, Any] = {}
    after: Dict[str, Any] = {}
    for label, spec in (case.get("targets") or {"host": {}}).items():
        spec = spec or {}
        no_ts = case.get("no_timestamps")
        if spec.get("only") != "after":
            before[label] = snapshot(label, spec, "before", None if no_ts else T0)
        if spec.get("only") != "before":
            after[label] = snapshot(label, spec, "after", None if no_ts else T0 + interval)
    return before, (None if case.get("single") else after), case.get("interval_arg", interval)


def assert_subset(actual: Any, expected: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), "%s: expected a dict, got %r" % (path, actual)
        for key, value in expected.items():
            assert key in actual, "%s.%s missing in %r" % (path, key, sorted(actual))
            assert_subset(actual[key], value, "%s.%s" % (path, key))
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), "%s: %r != %r" % (path, actual, expected)
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_subset(a, e, "%s[%d]" % (path, i))
    elif isinstance(expected, float) and isinstance(actual, (int, float)):
        assert actual == pytest.approx(expected), "%s: %r != %r" % (path, actual, expected)
    else:
        assert actual == expected, "%s: %r != %r" % (path, actual, expected)


def brief(findings: List[Dict[str, Any]]) -> str:
    return "\n".join("%s %s %s %s | %s" % (f["severity"], f["id"], f["target"], f["subject"], f["summary"]) for f in findings)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: Dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(ValueError) as info:
            _analyze.merge_thresholds(case["thresholds"])
        assert case["error"] in str(info.value)
        return
    before, after, interval = build(case)
    findings = _analyze.analyze_host(before, after, interval, case.get("thresholds"), host="h1",
                                     probe_answers=case.get("probe_answers", 0))
    expected = case["expect"]
    assert len(findings) == len(expected), "findings:\n" + brief(findings)
    for i, (f, e) in enumerate(zip(findings, expected)):
        assert_subset(f, e, "finding[%d] %s" % (i, f["id"]))
    for f in findings:  # the shape every finding has
        assert set(f) >= {"id", "layer", "severity", "kind", "target", "subject", "summary", "evidence", "explanation",
                          "remediation", "remediation_args", "advice", "explained_by", "host"}
        assert f["layer"] in _analyze.LAYERS and f["id"].split(".")[0] == f["layer"]
        assert f["severity"] in _analyze.SEVERITIES and f["host"] == "h1"
        assert f["remediation"] in (None,) + _terms.REMEDIATIONS
        assert f["advice"] and f["explanation"] and "\n" not in f["summary"]
        assert f["id"] in _analyze.THRESHOLDS


ANALYZED = [c for c in CASES if "error" not in c]


def _remediable(case: Dict[str, Any]) -> List[Tuple[str, str, bool]]:
    """(remediation, target, whether its facts have the rows) of every finding carrying a remediation, from the
    case's one snapshot (as the remediate module analyzes) and from both."""
    before, after, interval = build(case)
    out = []
    for snaps, findings in ((before, _analyze.analyze_host(before, None, None, case.get("thresholds"))),
                            (after or before, _analyze.analyze_host(before, after, interval, case.get("thresholds")))):
        for f in findings:
            if f["remediation"]:
                facts = snaps.get(f["target"]) or before.get(f["target"])
                out.append((f["remediation"], f["target"], _terms.remediable_rows(facts, [f["remediation"]])))
    return out


@pytest.mark.parametrize("case", ANALYZED, ids=[c["id"] for c in ANALYZED])
def test_remediable_findings_are_made_of_remediable_rows(case: Dict[str, Any]) -> None:
    """The remediate module analyzes a target only where terms.remediable_rows finds the rows a finding carrying a
    remediation is made of: every such finding of every case is on a target whose facts have them."""
    for kind, target, rows in _remediable(case):
        assert rows, "%s finding on %s, whose facts have no row remediable_rows knows" % (kind, target)


def test_the_cases_make_findings_of_every_remediation() -> None:
    made = set(kind for case in ANALYZED for kind, _target, _rows in _remediable(case))
    assert made == set(_terms.REMEDIATIONS)


def test_every_finding_id_is_triggered_by_a_case() -> None:
    seen = set()
    for case in CASES:
        for e in case.get("expect") or []:
            seen.add(e.get("id"))
    assert set(_analyze.FINDING_IDS) - seen == set()


def test_analyze_one_target_and_top_level_facts() -> None:
    """analyze() takes one target's facts (or the top-level ansible_facts.packetloss of a single target)."""
    case = next(c for c in CASES if c["id"] == "random-drop-input-and-output-the-seeds-case")
    before, after, interval = build(case)
    findings = _analyze.analyze(before["container:nginx"], after["container:nginx"], interval)
    assert [f["id"] for f in findings] == ["netfilter.random_drop"] * 2
    assert all(f["target"] == "container:nginx" and "host" not in f for f in findings)
    # the same through the packetloss_facts result shapes: with "targets", and a single target at the top
    top = dict(before["host"], targets=before)
    top_after = dict(after["host"], targets=after)
    assert len(_analyze.analyze_host(top, top_after, interval)) == 2
    assert _analyze.analyze_host(before["host"], after["host"], interval) == []


def test_softnet_goes_to_the_first_target_without_host() -> None:
    case = next(c for c in CASES if c["id"] == "softnet-backlog-drops-and-squeezes")
    before, after, interval = build(case)

    def relabel(d: Dict[str, Any]) -> Dict[str, Any]:
        return {"netns:a": dict(d["host"], target={"kind": "netns", "name": "a", "label": "netns:a"})}

    findings = _analyze.analyze_host(relabel(before), relabel(after), interval)
    assert [(f["id"], f["target"]) for f in findings] == [("softnet.dropped", "netns:a"), ("softnet.time_squeeze", "netns:a")]


def test_merge_thresholds_does_not_change_the_defaults() -> None:
    merged = _analyze.merge_thresholds({"tcp": {"min_delta": 9}})
    assert merged["tcp.retrans"]["min_delta"] == 9 and _analyze.THRESHOLDS["tcp.retrans"]["min_delta"] == 3
    assert _analyze.merge_thresholds(None) == _analyze.THRESHOLDS


def test_worst_and_at_least() -> None:
    fs = [{"layer": "tcp", "severity": "info", "target": "host", "id": "tcp.retrans"},
          {"layer": "netfilter", "severity": "critical", "target": "container:nginx", "id": "netfilter.random_drop"},
          {"layer": "tcp", "severity": "warning", "target": "host", "id": "tcp.listen_overflow"}]
    by_layer = _analyze.worst(fs)
    assert by_layer["tcp"] == "warning" and by_layer["netfilter"] == "critical" and by_layer["nic"] is None
    assert set(by_layer) == set(_analyze.LAYERS)
    assert _analyze.worst(fs, by="target") == {"host": "warning", "container:nginx": "critical"}
    assert _analyze.worst_severity(fs) == "critical" and _analyze.worst_severity([]) is None
    assert [f["id"] for f in _analyze.at_least(fs, "warning")] == ["netfilter.random_drop", "tcp.listen_overflow"]
    with pytest.raises(ValueError):
        _analyze.at_least(fs, "severe")


def test_layer_coverage() -> None:
    facts = copy.deepcopy(BASE["container"])
    facts["iptables"] = {"available": False, "reason": "iptables-nft-save is not installed"}
    del facts["tc"]
    cov = _analyze.layer_coverage(facts)
    assert cov["netfilter"] == {"available": False, "state": "unread", "reason": "iptables-nft-save is not installed",
                                "unread": []}
    assert cov["qdisc"]["available"] is False and cov["qdisc"]["state"] == "not_collected"
    assert cov["tcp"] == {"available": True, "state": "read", "reason": None, "unread": []}
    assert _analyze.not_read(cov) == ["qdisc", "netfilter"]


def test_layer_coverage_from_the_collectors_sources_map() -> None:
    """A source the collector could not read (sources[name].read false) makes the layers it feeds partial, and only
    those; net/snmp6 on a live host without IPv6 does not apply and leaves the layers read."""
    facts = copy.deepcopy(BASE["container"])
    facts["netstat"]["sources"] = {
        "interfaces": {"path": "/x/proc/net/dev", "read": False, "reason": "/x/proc/net/dev does not exist"},
        "snmp": {"path": "/x/proc/net/snmp", "read": True, "reason": None},
        "snmp6": {"path": "/proc/net/snmp6", "read": False, "reason": "no IPv6 here", "applies": False},
    }
    cov = _analyze.layer_coverage(facts)
    assert cov["nic"]["state"] == "partial"
    assert cov["nic"]["unread"] == [{"source": "/x/proc/net/dev", "reason": "/x/proc/net/dev does not exist"}]
    assert [l for l in _analyze.LAYERS if cov[l]["state"] != "read"] == ["nic"]
    facts["netstat"]["sources"]["snmp6"]["applies"] = True
    cov = _analyze.layer_coverage(facts)
    assert [l for l in _analyze.LAYERS if cov[l]["state"] != "read"] == ["nic", "ip", "udp"]


def test_docs_severity_md_shows_the_thresholds_of_the_code() -> None:
    """docs/severity.md carries the table rendered from THRESHOLDS: one place, and the page cannot drift from it."""
    path = os.path.join(HERE, "..", "..", "..", "..", "docs", "severity.md")
    with open(path) as f:
        page = f.read()
    assert _analyze.thresholds_markdown() in page, "regenerate the table in docs/severity.md from thresholds_markdown()"
    for fid in _analyze.FINDING_IDS:
        assert "| `%s` |" % fid in page


@pytest.mark.parametrize("events, population, lower", [
    (1, 1, 0.2065), (3, 3, 0.4385), (30, 30, 0.8865), (5, 100, 0.0215), (0, 10, 0.0), (10, 10, 0.7225)])
def test_wilson_lower_bound(events: int, population: int, lower: float) -> None:
    assert _analyze.wilson_lower(events, population) == pytest.approx(lower, abs=1e-4)
    assert _analyze.wilson_lower(1, 0) is None


def test_share_of_an_empty_denominator() -> None:
    """1 of 0 was 100% (issue 14 item 10): the population includes the event, so it is 1 of 1, bound 20.65%."""
    assert _analyze.share(1, 0, True) == {"population": 1, "percent": 100.0, "percent_lower": 20.65}
    assert _analyze.share(1, 0, False) == {"population": 1, "percent": 100.0, "percent_lower": 20.65}
    assert _analyze.share(0, 0) == {"population": 0, "percent": None, "percent_lower": None}
    assert _analyze.share(5, None) == {"population": None, "percent": None, "percent_lower": None}
    assert _analyze.share(5, 95, False)["population"] == 100 and _analyze.share(5, 95, True)["population"] == 95
