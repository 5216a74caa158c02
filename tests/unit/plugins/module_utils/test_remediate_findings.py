# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remediation driven by the diagnosis: selection, allow-list, scopes, verification, against remediate_findings.yml."""
from __future__ import annotations

import os
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.action.remediate import scope, unverifiable, usable
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import parse_label
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import batch, findings
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import RemediationError

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", "remediate_findings.yml")) as _f:
    CASES: Dict[str, Any] = yaml.safe_load(_f)

ALL = {"ids": [], "min_severity": "info", "targets": [], "kinds": ["netem", "random_drop"]}


def finding(short: List[Any]) -> Dict[str, Any]:
    fid, severity, target, args = short
    remediation = None if args is None else ("netem" if fid.startswith("qdisc.") else "random_drop")
    return {"id": fid, "severity": severity, "target": target, "subject": "%s on %s" % (fid, target),
            "summary": "-", "remediation": remediation, "remediation_args": args}


def run(short: List[Any]) -> Dict[str, Any]:
    return {"remediation": short[0], "target": short[1], "args": short[2]}


@pytest.mark.parametrize("label,expected", CASES["labels"]["ok"])
def test_labels_parsed(label: str, expected: List[str]) -> None:
    assert parse_label(label) == tuple(expected)


@pytest.mark.parametrize("label", CASES["labels"]["error"])
def test_bad_labels_refused(label: Any) -> None:
    with pytest.raises(ValueError, match="invalid target label"):
        parse_label(label)


@pytest.mark.parametrize("given,message", CASES["selection_errors"])
def test_bad_selection_refused(given: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        findings.check_selection(given["ids"], given["min_severity"], given["targets"], given["kinds"])
    assert message in str(err.value)


@pytest.mark.parametrize("case", CASES["runs"], ids=[c["name"] for c in CASES["runs"]])
def test_runs(case: Dict[str, Any]) -> None:
    selection = dict(ALL, **case.get("selection", {}))
    fs = [finding(f) for f in case["findings"]]
    allowed = dict((i, "expr%d" % i) for i in case.get("allowed", []))
    out = findings.runs(fs, selection, allowed)
    assert [[r["remediation"], r["target"], r["args"], len(r["findings"])] for r in out["apply"]] == case["apply"]
    assert [k["target"] for k in out["allowed"]] == case.get("kept", [])
    assert [[r["remediation"], r["keeps"][0]["why"]] for r in out["refused"]] == case.get("refused", [])
    for r in out["refused"]:
        assert "nothing of it was removed" in r["reason"] and r["keeps"][0]["subject"] in r["reason"]
    # a run made never removes what must stay: no allowed or unselected finding within any run's scope
    for r in out["apply"]:
        for i, f in enumerate(fs):
            if findings.covers(r, f):
                assert i not in allowed and findings.selected(f, selection)


@pytest.mark.parametrize("case", CASES["still_there"], ids=[c["name"] for c in CASES["still_there"]])
def test_still_there(case: Dict[str, Any]) -> None:
    after = [finding(f) for f in case["after"]]
    still = findings.still_there([run(r) for r in case["runs"]], after)
    assert still == [findings.brief(after[i]) for i in case["still"]]


@pytest.mark.parametrize("kind,args,message", CASES["check_args"])
def test_check_args_with_the_modules_own_spec(kind: str, args: Any, message: Any) -> None:
    if message is None:
        params = batch.check_args(kind, args)
        assert params["state"] == "absent" and params["backup"] is False  # the module's defaults filled in
        return
    with pytest.raises(RemediationError) as err:
        batch.check_args(kind, args)
    assert message in str(err.value)


def test_apply_refuses_bad_args_without_touching_anything() -> None:
    res = batch.apply("random_drop", {"state": "absent", "chain": "-F"}, check_mode=False, diff=False)
    assert res["failed"] and "invalid chain name '-F'" in res["msg"] and not res["changed"]


@pytest.mark.parametrize("given,message", CASES["runs_option"]["error"])
def test_runs_option_refused(given: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        findings.check_runs(given)
    assert message in str(err.value)


@pytest.mark.parametrize("case", CASES["usable"], ids=[c["name"] for c in CASES["usable"]])
def test_diagnosis_at_hand_usable(case: Dict[str, Any]) -> None:
    layers = dict((k, {"state": v}) for k, v in case["layers"].items())
    diagnosis = {"findings": [], "targets": {"host": {"layers": layers}, "container:c": {"layers": layers}}}
    assert usable(diagnosis, case["kinds"]) is case["usable"]
    assert usable({"findings": [], "targets": {}}, case["kinds"]) is False
    assert usable(None, case["kinds"]) is False


@pytest.mark.parametrize("case", CASES["scope"], ids=[c["name"] for c in CASES["scope"]])
def test_scope_after_the_change(case: Dict[str, Any]) -> None:
    runs = [{"remediation": "random_drop", "target": t, "args": a} for t, a in case["runs"]]
    assert scope(case["containers"], case["namespaces"], runs) == case["expected"]


def test_unverifiable_when_the_layer_is_not_read_after_the_change() -> None:
    made = [{"remediation": "random_drop", "target": "host", "args": {}, "result": {"changed": True}},
            {"remediation": "netem", "target": "netns:a", "args": {}, "result": {"changed": True}},
            {"remediation": "netem", "target": "netns:b", "args": {}, "result": {"changed": False}}]
    after = {"targets": {"host": {"layers": {"netfilter": {"state": "unread", "reason": "not root"}}}}}
    problems = unverifiable(made, after)
    assert len(problems) == 2 and "not root" in problems[0] and "netns:a" in problems[1]
    after["targets"]["host"]["layers"]["netfilter"]["state"] = "read"
    after["targets"]["netns:a"] = {"layers": {"qdisc": {"state": "partial"}}}
    assert unverifiable(made, after) == []
    assert unverifiable(made, None) == []
