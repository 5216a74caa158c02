# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compliance filters: the allow-list (JMESPath over the findings) and verdicts, table-driven from
cases/compliance_allow.yml; every filter is registered and documented by a sidecar file."""
from __future__ import annotations

import copy
import os
import sys
from typing import Any, Dict, List

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.packetloss.plugins.filter.compliance import FilterModule
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis

HERE = os.path.dirname(os.path.abspath(__file__))
MU_TESTS = os.path.join(HERE, "..", "module_utils")
FILTER_DIR = os.path.join(HERE, "..", "..", "..", "..", "plugins", "filter")
sys.path.insert(0, MU_TESTS)
from test_analyze import CASES as ANALYZER_CASES, build  # noqa: E402  (the analyzer's table of cases)

FILTERS = FilterModule().filters()

with open(os.path.join(MU_TESTS, "cases", "compliance_allow.yml")) as _f:
    CASES = yaml.safe_load(_f)["cases"]


def diagnosis(analyzer: str, host: str = "web1", facts: Any = None) -> Dict[str, Any]:
    """The diagnosis of an analyzer case, with ``facts`` ({target: {fact layer: value}}) put into both snapshots."""
    case = next(c for c in ANALYZER_CASES if c["id"] == analyzer)
    before, after, interval = build(case)
    for target, layers in (facts or {}).items():
        for snap in (before, after):
            for name, value in layers.items():
                if value is None:
                    snap[target].pop(name, None)
                elif isinstance(value, dict) and value.get("available", True) and isinstance(snap[target].get(name), dict):
                    snap[target][name] = dict(snap[target][name], **copy.deepcopy(value))  # e.g. adds "unread"
                else:
                    snap[target][name] = copy.deepcopy(value)
    return _diagnosis.host_diagnosis(before, after, interval, case.get("thresholds"), host=host,
                                     generated_at="2026-11-27T01:00:00+00:00")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_allow_list_and_verdict(case: Dict[str, Any]) -> None:
    d = diagnosis(case["analyzer"], case.get("host", "web1"), case.get("facts"))
    original = copy.deepcopy(d)
    kwargs = dict(allow=case["allow"], fail_severity=case.get("fail_severity", "warning"),
                  max_probe_loss=case.get("max_probe_loss", 0.0))
    for key in ("fail_unread", "allow_unread"):
        if key in case:
            kwargs[key] = case[key]
    if "error" in case:
        with pytest.raises(AnsibleFilterError, match="packetloss_"):
            FILTERS["packetloss_compliance"](d, **kwargs)
        with pytest.raises(AnsibleFilterError) as exc:
            FILTERS["packetloss_compliance"](d, **kwargs)
        assert case["error"] in str(exc.value)
        return
    allowed = FILTERS["packetloss_allowed"](d["findings"], case["allow"])
    assert [[f["target"], f["id"], f["subject"], f["allowed_by"]] for f in allowed] == case["allowed"]
    v = FILTERS["packetloss_compliance"](d, **kwargs)
    assert v["compliant"] is case["compliant"] and v["host"] == "web1"
    failing = [[c["target"], c["check"]] for c in v["checks"] if c["status"] == "fail"]
    assert failing == case["failing"]
    skipped = [[c["target"], c["check"]] for c in v["checks"] if c["status"] == "skipped"]
    assert skipped == case.get("skipped", [])
    assert [[u["target"], u["layer"], u["state"], u["allowed_by"]] for u in v["unread"]] == case.get("unread", [])
    # one check per target and layer; the allowed findings are recorded on their check, not as failures
    assert len(v["checks"]) == len(_analyze.LAYERS) * len(d["targets"]) + len(d["probes"])
    assert sorted(f["subject"] for f in v["allowed"]) == sorted(a[2] for a in case["allowed"])
    assert not any(f.get("allowed_by") for f in v["failing"])
    assert d == original, "the filters must not change their input"
    if not case["compliant"]:
        assert FILTERS["packetloss_compliance_message"](v).startswith("web1 is not drop-free")


def test_every_filter_has_sidecar_documentation() -> None:
    assert sorted(FILTERS) == ["packetloss_allowed", "packetloss_compliance", "packetloss_compliance_files",
                               "packetloss_compliance_message", "packetloss_key_rates", "packetloss_textfile"]
    for name in FILTERS:
        with open(os.path.join(FILTER_DIR, name + ".yml")) as f:
            doc = yaml.safe_load(f)
        assert doc["DOCUMENTATION"]["name"] == name
        assert doc["EXAMPLES"].strip() and doc["RETURN"]["_value"]["description"]


def test_empty_allow_list_compiles_nothing_and_allows_nothing() -> None:
    d = diagnosis("random-drop-input-and-output-the-seeds-case")
    assert FILTERS["packetloss_allowed"](d["findings"], []) == []
    assert FILTERS["packetloss_allowed"](d["findings"], None) == []
    assert FILTERS["packetloss_allowed"]([], ["[?id=='x']"]) == []
    with pytest.raises(AnsibleFilterError, match="invalid JMESPath"):
        FILTERS["packetloss_allowed"]([], ["[?"])  # validated even without findings (the role's pre-flight check)


def test_a_host_without_a_verdict_is_an_error_in_every_file() -> None:
    d = diagnosis("clean-host-and-container-busy-but-not-dropping", host="db1")
    v = FILTERS["packetloss_compliance"](d)
    files: List[Dict[str, str]] = FILTERS["packetloss_compliance_files"]([v], [d], hosts=["db1", "gone1"])
    by_path = dict((f["path"], f["content"]) for f in files)
    assert sorted(by_path) == ["compliance-junit.xml", "compliance.json", "packetloss.prom"]
    assert '<testsuite name="gone1"' in by_path["compliance-junit.xml"] and 'errors="1"' in by_path["compliance-junit.xml"]
    summary = yaml.safe_load(by_path["compliance.json"])
    assert summary["failed_hosts"] == ["gone1"] and summary["passed_hosts"] == ["db1"] and not summary["compliant"]
    assert 'packetloss_host_compliant{host="gone1"} 0' in by_path["packetloss.prom"]


def test_bad_input_is_a_filter_error() -> None:
    with pytest.raises(AnsibleFilterError, match="expected a host diagnosis"):
        FILTERS["packetloss_compliance"]([])
    with pytest.raises(AnsibleFilterError, match="expected a compliance verdict"):
        FILTERS["packetloss_compliance_message"]({})
    with pytest.raises(AnsibleFilterError, match="allow-list must be a list"):
        FILTERS["packetloss_allowed"]([], 5)
    with pytest.raises(AnsibleFilterError, match="max_probe_loss"):
        FILTERS["packetloss_compliance"](diagnosis("tcp-listen-overflow"), max_probe_loss=120)
