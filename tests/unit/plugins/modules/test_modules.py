# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's main(), driven by the cases in cases/MODULE.yml (see cases/README.md for their keys).

Each case gives the arguments, check mode and diff, what the module sees (commands, netlink, files, Docker: see
harness.py) and what it must return. Whatever a case says, a run in check mode and a run that fails change nothing
(no ruleset-changing command, no qdisc request), and no command ran that the case did not list.
"""
from __future__ import annotations

import glob
import os
import stat
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import LAYERS
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import assert_subset
from ansible_collections.netdiag.packetloss.tests.unit.plugins.modules.harness import (
    ACTIONS, FIXTURES, FakeSystem, loopback_ports, run_action, run_module, substitute, tmp_tree)

HERE = os.path.dirname(os.path.abspath(__file__))


def _cases() -> List[Tuple[str, Dict[str, Any]]]:
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "cases", "*.yml"))):
        module = os.path.basename(path)[:-4]
        with open(path) as f:
            for case in yaml.safe_load(f) or []:
                out.append((module, case))
    return out


CASES = _cases()


def test_every_module_has_cases() -> None:
    plugins = os.path.join(HERE, "..", "..", "..", "..", "plugins", "modules", "*.py")
    modules = set(os.path.basename(p)[:-3] for p in glob.glob(plugins))
    tested = set(m for m, _c in CASES)
    assert modules <= tested, sorted(modules - tested)  # diagnose and report_files: the action plugins


def _find(messages: List[str], wanted: str) -> bool:
    return any(wanted in m for m in messages)


@pytest.mark.parametrize("module,case", CASES, ids=["%s:%s" % (m, c["id"]) for m, c in CASES])
def test_module(module: str, case: Dict[str, Any], tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    tmp = str(tmp_path)
    tmp_tree(tmp, case.get("tmp_files", {}))
    with loopback_ports() as ports:
        names = dict(ports, fixtures=FIXTURES, tmp=tmp)
        system = FakeSystem(substitute(case.get("system"), names), tmp)
        with system.installed(monkeypatch):
            args = substitute(case.get("args", {}), names)
            if module in ACTIONS:
                result = run_action(module, args, capsys, system, check_mode=case.get("check_mode", False),
                                    task_vars=substitute(case.get("task_vars"), names), diff=case.get("diff", False))
            else:
                result = run_module(module, args, capsys, check_mode=case.get("check_mode", False),
                                    diff=case.get("diff", False))
    expect = substitute(case.get("expect", {}), names)
    failed = bool(expect.get("failed", False))
    assert bool(result.get("failed", False)) is failed, result.get("msg", result)
    assert module in ACTIONS or result["_rc"] == (1 if failed else 0)
    for wanted in [expect["msg"]] if isinstance(expect.get("msg"), str) else expect.get("msg", []):
        assert wanted in result.get("msg", ""), result.get("msg")
    if "summary" in expect:  # report_files' console summary
        assert expect["summary"] in result["summary"], result["summary"]
    if "changed" in expect:
        assert result.get("changed") is expect["changed"], result
    if "result" in expect:
        assert_subset(result, expect["result"])
    if "modules" in expect:  # the modules an action plugin ran, in order
        assert result["_modules"] == expect["modules"]
    if "files" in expect:  # files written under tmp: rel path -> text in them (or null: not there)
        for rel, text in expect["files"].items():
            path = os.path.join(tmp, rel)
            if text is None:
                assert not os.path.lexists(path), path
            else:
                with open(path) as f:
                    assert text in f.read(), path
    if "layers" in expect:  # exactly these layers were collected
        facts = result["ansible_facts"]["packetloss"]
        assert sorted(k for k in facts if k in LAYERS) == sorted(expect["layers"]), sorted(facts)
    for key in expect.get("absent", []):
        assert key not in result, "%s in the result: %r" % (key, result[key])
    for wanted in expect.get("warnings", []):
        assert _find(result.get("warnings", []), wanted), result.get("warnings")
    if "no_warnings" in expect:
        assert not result.get("warnings"), result.get("warnings")
    assert not system.commands.unexpected, "commands the case does not list: %s" % system.commands.unexpected
    if "commands" in expect:
        assert [c["argv"] for c in system.commands.calls] == expect["commands"]
    for argv, text in expect.get("stdin", {}).items():
        sent = [c["stdin"] for c in system.commands.calls if " ".join(c["argv"]) == argv]
        assert sent and all(line in sent[0] for line in text.splitlines()), (argv, sent)
    if case.get("check_mode") or failed:
        assert system.changes() == [] or expect.get("changes_on_failure"), system.changes()
    if "changes" in expect:
        assert system.changes() == expect["changes"]
    for entry in result.get("backup_files") or []:
        st = os.stat(entry["path"])
        assert stat.S_IMODE(st.st_mode) == 0o600 and entry["path"].startswith(tmp)
    if "backup_contains" in expect:
        with open(result["backup_files"][0]["path"]) as f:
            content = f.read()
        for line in expect["backup_contains"]:
            assert line in content, content
