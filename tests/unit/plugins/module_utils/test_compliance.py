# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_compliance: the Prometheus textfile (table-driven from cases/compliance_textfile.yml, every output checked
against the text exposition format), key counter rates, the JUnit XML and the JSON summary."""
from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import compliance as _compliance
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import key_rates

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis
from test_analyze import CASES as ANALYZER_CASES, build  # the analyzer's table of cases (same directory)

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "compliance_textfile.yml")) as _f:
    CASES = yaml.safe_load(_f)["cases"]

PROBES = {"results": [
    {"item": {"host": "172.17.0.2", "port": 80, "mode": "syn", "target": "container:nginx"}, "sent": 20, "answered": 13,
     "lost": 7, "loss_percent": 35.0, "rtt_ms": {"min": 0.1, "avg": 0.2, "max": 0.5, "p50": 0.2, "p95": 0.4}},
    {"item": {"host": "192.0.2.9", "port": 443}, "failed": False, "msg": "cannot resolve 192.0.2.9"},
]}

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                     r'(-?[0-9.]+(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$')


def diagnosis(analyzer: str, host: str, probes: Any = None) -> Tuple[Dict[str, Any], Any, Any]:
    case = next(c for c in ANALYZER_CASES if c["id"] == analyzer)
    before, after, interval = build(case)
    d = _diagnosis.host_diagnosis(before, after, interval, case.get("thresholds"), host=host, probes=probes,
                                  generated_at="2026-11-27T01:00:00+00:00")
    return d, before, after


def allowed(d: Dict[str, Any], exprs: List[str]) -> Dict[int, str]:
    """A stand-in for the filter's JMESPath evaluation: only [?id=='X'] here (the filter's own tests cover JMESPath)."""
    out = {}
    for e in exprs:
        fid = re.fullmatch(r"\[\?id=='([^']+)'\]", e).group(1)
        out.update((i, e) for i, f in enumerate(d["findings"]) if f["id"] == fid)
    return out


def check_exposition(text: str) -> Dict[str, int]:
    """The text exposition format, as node_exporter's textfile collector parses it; returns samples per metric."""
    assert text.endswith("\n") and "\n\n" not in text
    declared: Dict[str, Dict[str, str]] = {}
    samples: Dict[str, int] = {}
    seen = set()
    for line in text.splitlines():
        if line.startswith("# "):
            kind, name, rest = line[2:].split(" ", 2)
            assert kind in ("HELP", "TYPE") and kind not in declared.get(name, {}), line
            assert name not in samples, "HELP/TYPE after samples: %s" % line
            declared.setdefault(name, {})[kind] = rest
            continue
        m = _SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name = m.group(1)
        assert set(declared.get(name, {})) == {"HELP", "TYPE"}, "no HELP/TYPE before %s" % name
        assert declared[name]["TYPE"] in ("gauge", "counter")
        key = (name, m.group(2))
        assert key not in seen, "duplicate series %r" % line
        seen.add(key)
        samples[name] = samples.get(name, 0) + 1
    for name in declared:
        samples.setdefault(name, 0)
    return samples


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_textfile(case: Dict[str, Any]) -> None:
    diagnoses, verdicts, rates = [], [], {}
    for h in case["hosts"]:
        d, before, after = diagnosis(h["analyzer"], h["host"])
        diagnoses.append(d)
        r = key_rates(before, after) if h.get("rates") else None
        verdicts.append(_compliance.verdict(d, allowed(d, h.get("allow", [])), rates=r))
        if r:
            rates[h["host"]] = r
    text = _compliance.textfile(diagnoses, verdicts if case.get("verdicts", True) else None)
    if not case.get("verdicts", True):
        assert text == _compliance.textfile(diagnoses, None, rates)
    samples = check_exposition(text)
    lines = text.splitlines()
    pos = 0
    for want in case.get("lines", []):
        assert want in lines[pos:], "missing or out of order: %s\n%s" % (want, text)
        pos = lines.index(want, pos) + 1
    for bad in case.get("absent", []):
        assert not any(bad in l for l in lines), bad
    for metric, n in (case.get("series") or {}).items():
        assert samples.get(metric, 0) == n, (metric, samples)


def test_key_rates_count_a_reset_from_zero_and_skip_single_snapshots() -> None:
    before = {"targets": {"host": {"timestamp": 100.0, "tc": {"qdiscs": [{"stats": {"drops": 500}}]},
                                   "netstat": {"snmp": {"TcpExt": {"ListenOverflows": 10}}}},
                          "container:a": {"timestamp": 100.0, "tc": {"qdiscs": []}}}}
    after = {"targets": {"host": {"timestamp": 110.0, "tc": {"qdiscs": [{"stats": {"drops": 20}}]},
                                  "netstat": {"snmp": {"TcpExt": {"ListenOverflows": 30}}}}}}
    rates = key_rates(before, after)
    assert rates == {"host": {"qdisc_drops": 2.0, "tcp_listen_overflows": 2.0}}
    assert key_rates(before, None) == {}


def test_junit_one_case_per_target_and_check_with_the_evidence() -> None:
    d, _b, _a = diagnosis("random-drop-input-and-output-the-seeds-case", "web1", PROBES)
    clean, _b, _a = diagnosis("clean-host-and-container-busy-but-not-dropping", "db1")
    v = _compliance.verdict(d, {0: "[?evidence.rule.chain=='INPUT']"}, max_probe_loss=50.0)
    root = ET.fromstring(_compliance.junit([v, _compliance.verdict(clean)]).split("\n", 1)[1])
    assert [s.get("name") for s in root] == ["db1", "web1"]
    assert root.get("tests") == str(2 * 10 + 2 * 10 + 2) and root.get("failures") == "2" and root.get("errors") == "0"
    cases = dict(((c.get("classname"), c.get("name")), c) for c in root.iter("testcase"))
    netfilter = cases[("web1.container:nginx", "netfilter")].find("failure")
    assert netfilter.get("type") == "critical"
    assert netfilter.get("message").startswith("netfilter.random_drop: DROP rule ipv4 filter OUTPUT #1 (nft)")
    assert "probability=0.3" in netfilter.text and "counters packets: before" in netfilter.text
    assert "INPUT" not in netfilter.get("message")  # allowed: in system-out, not in the failure
    assert "[allowed by [?evidence.rule.chain=='INPUT']]" in cases[("web1.container:nginx", "netfilter")].find("system-out").text
    probe_ok = cases[("web1.host", "probe 192.0.2.9:443 connect")].find("failure")
    assert probe_ok.get("type") == "probe" and "cannot resolve" in probe_ok.get("message")
    assert cases[("web1.container:nginx", "probe 172.17.0.2:80 syn")].find("failure") is None  # 35% <= 50%
    assert all(c.find("failure") is None for (cls, _n), c in cases.items() if cls.startswith("db1."))


def test_summary_json() -> None:
    d, _b, _a = diagnosis("tcp-listen-overflow", "app1")
    v = _compliance.verdict(d)
    s = json.loads(_compliance.files([v], [d], allow=["[?id=='x']"], report_dir="/r")[1]["content"])
    assert s["schema"] == "netdiag.packetloss/compliance/v1" and s["compliant"] is False and s["hosts"] == 1
    assert s["failed_hosts"] == ["app1"] and s["allow"] == ["[?id=='x']"] and s["report_dir"] == "/r"
    assert s["checks"] == {"pass": 9, "fail": 1, "skipped": 0, "error": 0}
    host = s["results"][0]
    assert host["failed_checks"][0]["check"] == "tcp" and host["failing"][0]["id"] == "tcp.listen_overflow"
