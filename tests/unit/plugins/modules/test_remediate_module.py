# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediate module on the target (the action plugin's cases are in cases/remediate.yml): bad input fails
before any remediation is applied (no root needed)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List
from unittest import mock

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.action import remediate as remediate_action
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import batch, findings
from ansible_collections.netdiag.packetloss.plugins.modules import remediate
from ansible_collections.netdiag.packetloss.tests.unit.plugins.modules.harness import module_args


def run_main(args: Dict[str, Any], capsys: Any) -> Dict[str, Any]:
    with module_args(args):
        with pytest.raises(SystemExit):
            remediate.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args,message", [
    ({"runs": [{"remediation": "random_drop", "target": "host", "args": {"state": "gone"}}]},
     "value of state must be one of: absent, present"),
    ({"runs": [{"remediation": "netem", "target": "host", "args": {"state": "absent", "netns": "a", "container": "b"}}]},
     "mutually exclusive: netns|container"),
    ({"runs": [{"remediation": "netem", "target": "pod:x", "args": {"state": "absent"}}]}, "invalid target label"),
    ({"runs": [], "min_severity": "severe"}, "value of min_severity must be one of"),
    ({"allow": ["[?id=='qdisc.netem']"]}, "handled by the remediate action plugin"),
    ({"targets": ["netns"]}, "invalid target label 'netns'"),
])
def test_bad_input_fails_before_any_change(monkeypatch: Any, capsys: Any, args: Dict[str, Any], message: str) -> None:
    applied: List[Any] = []
    monkeypatch.setattr(batch, "apply", lambda *a, **k: applied.append(a) or {"changed": True})
    monkeypatch.setattr(batch, "apply_all", lambda *a, **k: applied.append(a) or [{"changed": True}])
    monkeypatch.setattr(remediate, "gather", lambda *a, **k: pytest.fail("read the host on bad input"))
    # a valid run first: it must not be applied either when a later one is bad
    if args.get("runs"):
        args = dict(args, runs=[{"remediation": "random_drop", "target": "host", "args": {"state": "absent"}}] + args["runs"])
    res = run_main(args, capsys)
    assert res["failed"] and message in res["msg"], res
    assert applied == []


ROLE_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))), "roles", "remediate")


@pytest.mark.parametrize("variables,message", [
    ({}, None),  # the role's defaults pass
    ({"packetloss_remediate_min_severity": "severe"},
     "value of packetloss_remediate_min_severity must be one of: info, warning, critical, got: severe"),
    ({"packetloss_remediations": ["tbf"]}, "value of packetloss_remediations must be one or more of"),
    # the type's wording differs between ansible-core versions (str, <class 'str'>): the part every one says
    ({"packetloss_verify": "maybe"}, "we were unable to convert to bool"),
    ({"packetloss_remediate_findings": {"id": "qdisc.netem"}}, "packetloss_remediate_findings"),
])
def test_the_action_checks_the_role_variables_as_ansibles(variables: Dict[str, Any], message: Any) -> None:
    """playbooks/remediate.yml imports the role without Ansible's validation task; the action checks the same spec."""
    from ansible.plugins.action.validate_argument_spec import ActionModule as Validate
    with open(os.path.join(ROLE_PATH, "defaults", "main.yml")) as f:
        defaults = yaml.safe_load(f)
    values = dict(defaults, **variables)
    options = remediate_action.role_options(ROLE_PATH)
    assert set(options) == set(defaults)  # every variable of the role is checked
    errors = remediate_action.role_check(options, values)[0]
    # what Ansible's own validation task says of the same values
    task = mock.MagicMock()
    task.args = {"argument_spec": options, "provided_arguments": values}
    task.async_val = 0
    core = Validate(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    core._templar = mock.MagicMock(template=lambda value: value)  # pylint: disable=protected-access
    expected = core.run(task_vars={}).get("argument_errors", [])
    assert errors == expected
    if message is None:
        assert errors == []
    else:
        assert any(message in e for e in errors), errors


def test_in_the_role_the_options_are_the_role_variables() -> None:
    """The role's task gives no arguments: every role variable but packetloss_use_diagnosis is an option of the action
    (ROLE_ARGS), a string packetloss_containers is a list of it, the diagnosis at hand only when asked to use it."""
    with open(os.path.join(ROLE_PATH, "defaults", "main.yml")) as f:
        defaults = yaml.safe_load(f)
    assert set(remediate_action.ROLE_ARGS.values()) | {"packetloss_use_diagnosis"} == set(defaults)
    assert set(remediate_action.ROLE_ARGS) <= set(findings.ARGUMENT_SPEC)
    args = remediate_action.role_args(defaults, {"targets": {}})
    assert args["containers"] == ["all"] and args["remediations"] == defaults["packetloss_remediations"]
    assert args["diagnosis"] == {"targets": {}} and args["probe_max_loss"] == 0.0
    assert "diagnosis" not in remediate_action.role_args(dict(defaults, packetloss_use_diagnosis=False), {"targets": {}})
    assert "diagnosis" not in remediate_action.role_args(defaults, None)
    assert remediate_action.role_args(dict(defaults, packetloss_containers=["a", "b"]), None)["containers"] == ["a", "b"]
