# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediation modules' interfaces in one place, and several remediations in one module run.

``SPECS`` holds the argument spec of M(random_drop) and M(netem) (the modules build their AnsibleModule from it);
``apply`` validates one remediation's arguments against that same spec and runs it through ``common.execute``, the
body behind both modules, so a remediation run by the remediate module behaves exactly as the module run alone:
the same plan, check mode, diff, backup, lock and verification.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import (
    BACKUP_ARGS, Plan, RemediationError, execute)
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import rules as _rules
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import TARGET_ARGS, Target

KINDS = ("netem", "random_drop")

SPECS: Dict[str, Dict[str, Any]] = {
    "random_drop": dict(
        argument_spec=dict(
            TARGET_ARGS,
            state=dict(type="str", required=True, choices=["absent", "present"]),
            family=dict(type="str", choices=list(_rules.FAMILIES)),
            backend=dict(type="str", choices=list(_rules.BACKENDS)),
            table=dict(type="str"),
            chain=dict(type="str"),
            probability=dict(type="float"),
            protocol=dict(type="str", choices=list(_rules.PROTOCOLS)),
            port=dict(type="int"),
            **BACKUP_ARGS
        ),
        mutually_exclusive=[("netns", "container")],
    ),
    "netem": dict(
        argument_spec=dict(
            TARGET_ARGS,
            state=dict(type="str", required=True, choices=["absent", "present"]),
            interface=dict(type="str"),
            parent=dict(type="str", choices=["any", "root", "child"], default="any"),
            match=dict(type="dict"),
            loss=dict(type="float"),
            loss_correlation=dict(type="float"),
            delay=dict(type="raw"),
            jitter=dict(type="raw"),
            delay_correlation=dict(type="float"),
            duplicate=dict(type="float"),
            duplicate_correlation=dict(type="float"),
            corrupt=dict(type="float"),
            corrupt_correlation=dict(type="float"),
            reorder=dict(type="float"),
            reorder_correlation=dict(type="float"),
            gap=dict(type="int"),
            rate=dict(type="raw"),
            limit=dict(type="int"),
            ecn=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            **BACKUP_ARGS
        ),
        mutually_exclusive=[("netns", "container")],
        required_if=[("state", "present", ("interface",))],
    ),
}


def _netem() -> Any:
    """The netem remediation, compiled only on a host where a netem run is made (the module code comes to the target
    in a zip and is compiled on every run)."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import netem
    return netem


def summary(kind: str) -> Callable[[Plan, bool], str]:
    """The result message of the remediation module ``kind``."""
    return _netem().summary if kind == "netem" else _rules.summary


def module_kwargs(kind: str) -> Dict[str, Any]:
    """AnsibleModule's keyword arguments for the remediation module ``kind``."""
    return dict(SPECS[kind], supports_check_mode=True)


def builder(kind: str, params: Dict[str, Any], check_mode: bool) -> Callable[[Target], Plan]:
    """The plan builder of ``kind`` for validated ``params`` (RemediationError for a bad combination)."""
    if kind == "netem":
        params = dict(params)
        if params["state"] == "present" and params["parent"] == "any":
            params["parent"] = None  # the default; present always sets the root
        return _netem().build(params, check_mode=check_mode)
    return _rules.build(params)


def check_args(kind: str, args: Any) -> Dict[str, Any]:
    """``args`` validated against the module ``kind``'s own argument spec, defaults filled in; RemediationError naming
    what is wrong."""
    if kind not in SPECS:
        raise RemediationError("unknown remediation %r (known: %s)" % (kind, ", ".join(KINDS)))
    if not isinstance(args, dict):
        raise RemediationError("the arguments of remediation %s must be a dictionary, got %r" % (kind, args))
    spec = SPECS[kind]
    validator = ArgumentSpecValidator(spec["argument_spec"], mutually_exclusive=spec.get("mutually_exclusive"),
                                      required_if=spec.get("required_if"))
    result = validator.validate(dict(args))
    if result.error_messages:
        raise RemediationError("remediation %s %s: %s" % (kind, _brief(args), "; ".join(result.error_messages)))
    return result.validated_parameters


def _brief(args: Dict[str, Any]) -> str:
    return "(%s)" % ", ".join("%s=%s" % (k, args[k]) for k in sorted(args))


class _Done(Exception):
    def __init__(self, result: Dict[str, Any]) -> None:
        Exception.__init__(self)
        self.result = result


class _Capture:
    """What ``common.execute`` uses of an AnsibleModule, keeping the result instead of exiting."""

    def __init__(self, params: Dict[str, Any], check_mode: bool, diff: bool) -> None:
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.warnings: List[str] = []

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)

    def exit_json(self, **result: Any) -> None:
        raise _Done(dict(result, warnings=self.warnings))

    def fail_json(self, msg: str, **result: Any) -> None:
        raise _Done(dict(result, failed=True, msg=msg, warnings=self.warnings))


def apply(kind: str, args: Dict[str, Any], check_mode: bool, diff: bool) -> Dict[str, Any]:
    """Run one remediation as its module would and return the module's result (``failed`` and ``msg`` on failure)."""
    try:
        params = check_args(kind, args)
        build = builder(kind, params, check_mode)
    except RemediationError as exc:
        return dict(failed=True, changed=False, msg=str(exc), warnings=[])
    capture = _Capture(params, check_mode, diff)
    try:
        execute(capture, kind, build, summary(kind))
    except _Done as done:
        return done.result
    return dict(failed=True, changed=False, msg="%s ended without a result" % kind, warnings=capture.warnings)


def _random_drops(params: List[Dict[str, Any]], check_mode: bool, diff: bool) -> List[Dict[str, Any]]:
    """Several random_drop state=absent runs on one target (``params`` checked, same target and backup) as one:
    one reading of the rulesets, one plan, one restore per ruleset and table, one re-read; a result per run."""
    try:
        vs = [_rules.validate(p) for p in params]
    except RemediationError as exc:
        return _rules.split(dict(failed=True, changed=False, msg=str(exc), warnings=[]), None, params, check_mode)
    plans: List[Plan] = []

    def build(target: Target) -> Plan:
        plan = _rules.plan_absent_many(target, vs)
        plan.extra["state"] = "absent"
        plans.append(plan)
        return plan
    capture = _Capture(params[0], check_mode, diff)
    try:
        execute(capture, "random_drop", build, _rules.summary)
        result = dict(failed=True, changed=False, msg="random_drop ended without a result", warnings=capture.warnings)
    except _Done as done:
        result = done.result
    return _rules.split(result, plans[0] if plans else None, vs, check_mode)


def apply_all(runs: List[Dict[str, Any]], backup: Dict[str, Any], check_mode: bool, diff: bool) -> List[Dict[str, Any]]:
    """Run every remediation of ``runs`` ({remediation, args}) with ``backup`` (backup, backup_dir) and return the
    module's result of each, in order. The random_drop removals of one target (state absent) are made together:
    one plan from one reading of its rulesets (see rules.plan_absent_many), results split per run as each run alone
    would report it; every other run as its module would run it alone."""
    results: List[Dict[str, Any]] = [{} for _r in runs]
    groups: Dict[str, List[int]] = {}
    params: Dict[int, Dict[str, Any]] = {}
    order: List[Any] = []
    for i, run in enumerate(runs):
        args = dict(run["args"], **backup)
        if run["remediation"] == "random_drop":
            try:
                params[i] = check_args("random_drop", args)
            except RemediationError as exc:
                results[i] = dict(failed=True, changed=False, msg=str(exc), warnings=[])
                continue
            if params[i]["state"] == "absent":
                key = json.dumps([params[i].get(k) for k in sorted(TARGET_ARGS)])  # one target: every target argument
                if key not in groups:
                    order.append(key)
                groups.setdefault(key, []).append(i)
                continue
        order.append(i)
    for item in order:
        if isinstance(item, str):
            members = groups[item]
            for i, res in zip(members, _random_drops([params[i] for i in members], check_mode, diff)):
                results[i] = res
        else:
            results[item] = apply(runs[item]["remediation"], dict(runs[item]["args"], **backup), check_mode, diff)
    return results


__all__ = ["KINDS", "SPECS", "summary", "module_kwargs", "builder", "check_args", "apply", "apply_all"]
