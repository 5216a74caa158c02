# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's diagnosis in one task (see plugins/modules/diagnose.py for the documentation).

collect (packetloss_facts on the target, both snapshots in one module run) -> analyze (the same pure functions
as the packetloss_diagnosis filter, here in the controller's worker) -> facts. With probes, the snapshots are two
module runs and the probes run between them, as the interval's traffic.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect import probe as _probe

from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.limits import HOLD_MAX, MAX_INTERVAL

FACTS_MODULE = "netdiag.packetloss.packetloss_facts"
PROBE_MODULE = "netdiag.packetloss.probe"

ARGUMENT_SPEC: Dict[str, Any] = dict(
    gather_subset=dict(type="list", elements="str", default=["all"]),
    containers=dict(type="list", elements="str", default=["all"]),
    namespaces=dict(type="list", elements="str", default=[]),
    interval=dict(type="float", default=5.0),
    thresholds=dict(type="dict", default={}),
    probes=dict(type="list", elements="dict", default=[]),
    probe_from=dict(type="str", choices=["controller", "host"], default="controller"),
    host=dict(type="str"),
    install_prerequisites=dict(type="bool", default=False),
    drop_reasons=dict(type="bool", default=True),
)
PROBE_KEYS = frozenset(("host", "port", "target", "name") + tuple(_probe.DEFAULTS))


def check_containers(containers: List[str]) -> List[str]:
    """[all], [none] or names; raise ValueError for a mix."""
    if not containers:
        return ["none"]
    if len(containers) > 1 and ("all" in containers or "none" in containers):
        raise ValueError("containers must be all, none or a list of container names, got %s" % ", ".join(containers))
    return list(containers)


def check_probe(spec: Dict[str, Any]) -> Dict[str, Any]:
    """A probe as the probe module takes it (defaults filled in); raise ValueError for a bad one."""
    unknown = sorted(set(spec) - PROBE_KEYS)
    if unknown:
        raise ValueError("probe %r: unknown key(s) %s (known: %s)" % (spec, ", ".join(unknown), ", ".join(sorted(PROBE_KEYS))))
    if not isinstance(spec.get("host"), str) or not spec["host"]:
        raise ValueError("probe %r: host (a name or address) is required" % (spec,))
    out = dict(_probe.DEFAULTS, **spec)
    try:
        out["port"], out["count"] = int(out.get("port")), int(out["count"])
        out["interval"], out["timeout"] = float(out["interval"]), float(out["timeout"])
    except (TypeError, ValueError):
        raise ValueError("probe %r: port and count must be integers, interval and timeout numbers" % (spec,))
    if out["family"] not in _probe.FAMILIES:
        raise ValueError("probe %r: family must be one of %s" % (spec, ", ".join(_probe.FAMILIES)))
    try:
        _probe.check_args(out["port"], out["mode"], out["count"], out["interval"], out["timeout"])
    except _probe.ProbeError as exc:
        raise ValueError("probe %r: %s" % (spec, exc))
    return out


def hold_seconds(interval: float, probes: List[Dict[str, Any]]) -> float:
    """How long the first run holds its drop-reason recording for the second: the interval, the probes' longest run
    (sent one after another: count x interval + timeout each) and two minutes for the round trips, at most HOLD_MAX."""
    probing = sum(p["count"] * p["interval"] + p["timeout"] for p in probes)
    return min(float(HOLD_MAX), interval + probing + 120.0)


def carry_drop_reasons(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, Any]:
    """``after`` with the drop_reasons layer of ``before`` (of each target): where the first of two runs could not
    hold a recording, its layer says why, and the second run did not collect one."""
    if "drop_reasons" in before:
        after["drop_reasons"] = before["drop_reasons"]
    for label, facts in (after.get("targets") or {}).items():
        layer = ((before.get("targets") or {}).get(label) or {}).get("drop_reasons")
        if isinstance(facts, dict) and layer is not None:
            facts["drop_reasons"] = layer
    return after


def probe_args(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The probe module's arguments of a checked probe (its labels left out)."""
    return dict((k, v) for k, v in spec.items() if k not in ("target", "name"))


class ActionModule(ActionBase):
    """Runs packetloss_facts (and the probes) on the target, the analysis in the controller's worker."""

    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        self._warnings: List[str] = []
        result = super(ActionModule, self).run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            containers = check_containers(args["containers"])
            thresholds = args["thresholds"] or None
            _analyze.merge_thresholds(thresholds)
            probes = [check_probe(p) for p in args["probes"]]
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        interval = args["interval"]
        if not 0 <= interval <= MAX_INTERVAL:
            raise AnsibleActionFail("interval must be 0-%d seconds, got %s" % (MAX_INTERVAL, interval))
        # drop_reasons: false leaves the layer out; true records it where the kernel offers it (docs/drop-reasons.md)
        subset = list(args["gather_subset"]) + ([] if args["drop_reasons"] else ["!drop_reasons"])
        facts_args = dict(gather_subset=subset, containers=containers, namespaces=args["namespaces"], rules="drops")
        host = args["host"] or task_vars.get("inventory_hostname") or "localhost"
        self._install = bool(args["install_prerequisites"])
        self._prerequisites: Optional[Dict[str, Any]] = None
        self._docker_sdk = "not_needed"

        if not probes:
            # both snapshots in one module run: one round trip whatever the interval
            facts = self._facts(dict(facts_args, interval=interval), task_vars)
            before, after = (facts.get("packetloss_before"), facts["packetloss"]) if interval else (facts["packetloss"], None)
            probe_results: List[Dict[str, Any]] = []
        else:
            # two module runs with the probes between them; the drop reasons recorded over both: the first run
            # holds the recording (a keeper process on the target), the second reads it (docs/drop-reasons.md)
            first = dict(facts_args, drop_reasons_hold=hold_seconds(interval, probes)) if interval and args["drop_reasons"] else facts_args
            before = self._facts(first, task_vars)["packetloss"]
            started = time.monotonic()  # the first snapshot is done: the interval is at least what was asked
            probe_results = [self._probe(p, args["probe_from"], task_vars) for p in probes]
            after = None
            if interval:
                time.sleep(max(0.0, started + interval - time.monotonic()))
                held = (before.get("drop_reasons") or {}).get("instance") if first is not facts_args else None
                if held or first is facts_args:
                    second = dict(facts_args, drop_reasons_instance=held) if held else facts_args
                    after = self._facts(second, task_vars)["packetloss"]
                else:  # the hold failed: the first run's layer says why (not the second's "no interval")
                    second = dict(facts_args, gather_subset=list(facts_args["gather_subset"]) + ["!drop_reasons"])
                    after = carry_drop_reasons(before, self._facts(second, task_vars)["packetloss"])

        seconds = interval if interval else None
        diagnosis = _diagnosis.host_diagnosis(before, after, seconds, thresholds, host=str(host), probes=probe_results)
        rates = _analyze.key_rates(before, after, seconds) if after is not None else {}
        result.update(
            changed=bool(self._prerequisites and self._prerequisites["changed"]),
            ansible_facts=dict(packetloss_diagnosis=diagnosis, packetloss_findings=diagnosis["findings"],
                               packetloss_key_rates=rates),
            worst=diagnosis["worst"], counts=diagnosis["counts"],
            msg=_report.console_message(diagnosis),
        )
        if self._install:
            result["prerequisites"] = self._prerequisites or dict(changed=False, packages=[], docker_sdk=self._docker_sdk)
        if self._warnings:
            result["warnings"] = self._warnings
        return result

    def _install_prerequisites(self, task_vars: Dict[str, Any]) -> Dict[str, Any]:
        """The Docker SDK for Python from the distribution's packages, on a Docker host that lacks it.

        Part of this task rather than a task of its own: every task costs a round of workers over the fleet, even
        skipped, and here it costs nothing where the SDK is there. The package manager module is found as
        ansible.builtin.package finds it.
        """
        manager = task_vars.get("ansible_facts", {}).get("pkg_mgr")
        if not manager:
            facts = self._execute_module(module_name="ansible.legacy.setup", task_vars=task_vars,
                                         module_args=dict(filter="ansible_pkg_mgr", gather_subset="!all"))
            manager = facts.get("ansible_facts", {}).get("ansible_pkg_mgr")
        if not manager or manager == "unknown":
            raise AnsibleActionFail("install_prerequisites: cannot tell the target's package manager; install the "
                                    "Docker SDK for Python (python3-docker) on it by hand")
        package = "python-docker" if manager == "pacman" else "python3-docker"
        res = self._execute_module(module_name="ansible.legacy." + manager, task_vars=task_vars,
                                   module_args=dict(name=package, state="present"))
        if res.get("failed"):
            raise AnsibleActionFail("install_prerequisites: %s could not install %s: %s"
                                    % (manager, package, res.get("msg")), result=res)
        return dict(changed=bool(res.get("changed")), packages=[package], manager=manager, docker_sdk="missing")

    def _facts(self, module_args: Dict[str, Any], task_vars: Dict[str, Any]) -> Dict[str, Any]:
        res = self._execute_module(module_name=FACTS_MODULE, module_args=module_args, task_vars=task_vars)
        if self._install and self._prerequisites is None and res.get("docker_sdk") == "missing":
            # the fact module found a Docker host without the SDK: install it, then read again with it
            self._prerequisites = self._install_prerequisites(task_vars)
            res = self._execute_module(module_name=FACTS_MODULE, module_args=module_args, task_vars=task_vars)
        self._docker_sdk = res.get("docker_sdk", self._docker_sdk)
        if res.get("failed") or "ansible_facts" not in res:
            raise AnsibleActionFail("%s failed: %s" % (FACTS_MODULE, res.get("msg") or res.get("module_stderr") or res),
                                    result=res)
        self._warnings.extend(str(w) for w in res.get("warnings") or [] if str(w) not in self._warnings)
        return res["ansible_facts"]

    def _probe(self, spec: Dict[str, Any], probe_from: str, task_vars: Dict[str, Any]) -> Dict[str, Any]:
        """One probe's result with its spec as ``item``, the shape normalize_probes reads; a failure is kept."""
        if probe_from == "host":
            res = self._execute_module(module_name=PROBE_MODULE, module_args=probe_args(spec), task_vars=task_vars)
            res = dict(res)
        else:
            try:
                res = dict(_probe.run(**probe_args(spec)))
            except (_probe.ProbeError, OSError) as exc:
                res = dict(failed=True, msg=str(exc))
        res["item"] = spec
        # whether the probe ran on the diagnosed host's own kernel (its syn probe's SYN-ACKs are then dropped there)
        res["on_target"] = probe_from == "host" or self._connection.transport == "local"
        return res


__all__ = ["ActionModule", "check_containers", "check_probe", "probe_args", "hold_seconds", "carry_drop_reasons"]
