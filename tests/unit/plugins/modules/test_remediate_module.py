# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediate module on the target (the action plugin's cases are in cases/remediate.yml): bad input fails
before any remediation is applied (no root needed)."""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import batch
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
