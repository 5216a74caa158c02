# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter plugin: every filter is registered, documented by a sidecar file, and turns bad input into AnsibleFilterError."""
from __future__ import annotations

import copy
import os
from typing import Any, Dict

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.packetloss.plugins.filter.packetloss import FilterModule

HERE = os.path.dirname(os.path.abspath(__file__))
FILTER_DIR = os.path.join(HERE, "..", "..", "..", "..", "plugins", "filter")
BASE_FILE = os.path.join(HERE, "..", "module_utils", "cases", "analyze_base.yml")
FILTERS = FilterModule().filters()

with open(BASE_FILE) as _f:
    BASE = yaml.safe_load(_f)


def facts(listen_overflows: int, timestamp: float) -> Dict[str, Any]:
    """ansible_facts.packetloss as packetloss_facts returns it with containers: the host at the top and in targets."""
    host = copy.deepcopy(BASE["host"])
    host["timestamp"] = timestamp
    host["netstat"]["snmp"]["TcpExt"]["ListenOverflows"] = listen_overflows
    ctr = copy.deepcopy(BASE["container"])
    ctr["timestamp"] = timestamp
    return dict(host, targets={"host": host, "container:nginx": ctr})


def test_every_filter_has_sidecar_documentation() -> None:
    assert sorted(FILTERS) == ["packetloss_at_least", "packetloss_diagnosis", "packetloss_findings", "packetloss_report_files",
                               "packetloss_summary_table", "packetloss_thresholds", "packetloss_worst"]
    for name in FILTERS:
        with open(os.path.join(FILTER_DIR, name + ".yml")) as f:
            doc = yaml.safe_load(f)
        assert doc["DOCUMENTATION"]["name"] == name
        assert set(doc) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
        assert "_input" in doc["DOCUMENTATION"]["options"]


@pytest.mark.parametrize("interval, ids", [(None, ["tcp.listen_overflow"]), ("5", ["tcp.listen_overflow"]), (0, [])])
def test_findings(interval: Any, ids: Any) -> None:
    findings = FILTERS["packetloss_findings"](facts(0, 100.0), facts(12, 105.0), interval, None, "web1")
    assert [f["id"] for f in findings] == ids
    if ids:
        assert findings[0]["host"] == "web1" and findings[0]["evidence"]["rate"] == 2.4


def test_diagnosis_worst_and_reports() -> None:
    diag = FILTERS["packetloss_diagnosis"](facts(0, 100.0), facts(12, 105.0), 5, {"tcp": {"critical_rate": 2}}, "web1", [])
    assert diag["worst"] == "critical" and list(diag["targets"]) == ["host", "container:nginx"]
    assert FILTERS["packetloss_worst"](diag["findings"])["tcp"] == "critical"
    assert FILTERS["packetloss_worst"](diag["findings"], "all") == "critical"
    assert FILTERS["packetloss_worst"](diag["findings"], "target") == {"host": "critical"}
    assert len(FILTERS["packetloss_at_least"](diag["findings"], "critical")) == 1
    files = FILTERS["packetloss_report_files"]([diag], "targets")
    assert [f["path"] for f in files] == ["web1/host.json", "web1/container_nginx.json"]
    assert len(FILTERS["packetloss_report_files"](diag)) == 7
    assert "crit listen_overflow" in FILTERS["packetloss_summary_table"]([diag])


def test_thresholds_filter() -> None:
    th = FILTERS["packetloss_thresholds"]({"netfilter.drop_hits": {"severity": "info"}})
    assert th["netfilter.drop_hits"]["severity"] == "info" and th["tcp.retrans"]["min_delta"] == 3
    assert FILTERS["packetloss_thresholds"](None)["qdisc.netem"] == {"enabled": True, "severity": None}


@pytest.mark.parametrize("name, args, message", [
    ("packetloss_thresholds", ({"tcp.nope": {}},), "packetloss_thresholds: unknown finding id or layer 'tcp.nope'"),
    ("packetloss_findings", ({}, {}, "soon"), "interval must be a number of seconds"),
    ("packetloss_worst", ([], "colour"), "by must be layer, target, id, host or all"),
    ("packetloss_at_least", ([], "severe"), "severity must be one of info, warning, critical"),
    ("packetloss_report_files", ([], "pdf"), "kind must be all, targets or fleet"),
])
def test_errors_are_filter_errors(name: str, args: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS[name](*args)
    assert message in str(info.value)
