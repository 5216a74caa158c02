# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's remediation in one task (see plugins/modules/remediate.py for the documentation).

findings (a diagnosis at hand, or diagnose first) -> selection minus the allow-list (controller) -> the module runs
of every target in one module run on the target (netem / random_drop bodies, their own verification), which reads
the layers again afterwards -> the diagnosis after (controller) -> before/after per target, probes.

Without a diagnosis at hand and without an allow-list, the target diagnoses and selects itself in the same module
run (the analyzer is pure, stdlib-only Python): one round trip per host, as diagnose. With an allow-list (JMESPath,
controller-only), the host is read first and the module runs only where something is to be removed.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.vars import combine_vars

from ansible_collections.netdiag.packetloss.plugins.action.diagnose import ActionModule as DiagnoseAction
from ansible_collections.netdiag.packetloss.plugins.action.diagnose import check_containers, check_probe
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import parse_label
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import findings as _findings
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis

MODULE = "netdiag.packetloss.remediate"
ROLE = "netdiag.packetloss.remediate"
_ROLE_OPTIONS: Dict[str, Dict[str, Any]] = {}
# In the remediate role, the action's options are the role's variables (its one task gives no arguments): each is
# templated once, for the check against the role's meta/argument_specs.yml, where arguments written in the task would
# each be a Jinja template compiled again in every worker, for every host. diagnosis: see role_args.
ROLE_ARGS = {
    "remediations": "packetloss_remediations",
    "findings": "packetloss_remediate_findings",
    "min_severity": "packetloss_remediate_min_severity",
    "targets": "packetloss_remediate_targets",
    "allow": "packetloss_remediate_allow",
    "containers": "packetloss_containers",
    "namespaces": "packetloss_netns",
    "thresholds": "packetloss_thresholds",
    "backup": "packetloss_backup",
    "backup_dir": "packetloss_backup_dir",
    "verify": "packetloss_verify",
    "probes": "packetloss_probe_targets",
    "probe_from": "packetloss_probe_from",
    "probe_max_loss": "packetloss_probe_max_loss",
}


def role_options(role_path: str) -> Dict[str, Any]:
    """The options of the role's meta/argument_specs.yml (entry point main), read once per process."""
    if role_path not in _ROLE_OPTIONS:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(os.path.join(role_path, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            specs = yaml.load(handle, Loader=loader)  # nosec: a safe loader
        _ROLE_OPTIONS[role_path] = ((specs or {}).get("argument_specs") or {}).get("main", {}).get("options") or {}
    return _ROLE_OPTIONS[role_path]


def role_check(options: Dict[str, Any], values: Dict[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    """What Ansible's role argument validation (validate_argument_spec) says of the role's variables ``values``, and
    the values as it converts them (bool, float)."""
    result = ArgumentSpecValidator(options).validate(values)
    return list(result.error_messages), result.validated_parameters


def role_args(values: Dict[str, Any], diagnosis: Any = None) -> Dict[str, Any]:
    """The action's options from the remediate role's variables ``values`` (checked): ROLE_ARGS, a string
    packetloss_containers as a list of it, and ``diagnosis`` (packetloss_diagnosis, an earlier play's) when
    packetloss_use_diagnosis says to act on it and there is one."""
    args = dict((option, values[var]) for option, var in ROLE_ARGS.items() if var in values)
    if isinstance(args.get("containers"), str):
        args["containers"] = [args["containers"]]
    if values.get("packetloss_use_diagnosis", True) and diagnosis is not None:
        args["diagnosis"] = diagnosis
    return args


def allow_list() -> Any:
    """The compliance gate's allow-list filter, imported (with jmespath) only where there is an allow-list."""
    from ansible_collections.netdiag.packetloss.plugins.filter import compliance
    return compliance


def usable(diagnosis: Any, kinds: List[str]) -> bool:
    """Whether a diagnosis at hand can be acted on: it has targets, and every one has the layers the remediations'
    findings come from collected (read, in part, or unread - shown as such - but not left out)."""
    if not isinstance(diagnosis, dict) or not isinstance(diagnosis.get("targets"), dict) or not diagnosis["targets"]:
        return False
    if not isinstance(diagnosis.get("findings"), list):
        return False
    for t in diagnosis["targets"].values():
        layers = (t or {}).get("layers") or {}
        for kind in kinds:
            if (layers.get(_findings.LAYER_OF[kind]) or {}).get("state", "not_collected") == "not_collected":
                return False
    return True


def scope(containers: List[str], namespaces: List[str], runs: List[Dict[str, Any]]) -> Dict[str, List[str]]:
    """The containers and namespaces to read after the change: the asked ones and every run's target."""
    containers, namespaces = list(containers), list(namespaces)
    for run in runs:
        kind, name = parse_label(run["target"])
        if kind == "container" and containers != ["all"] and name not in containers:
            containers = [c for c in containers if c != "none"] + [name]
        elif kind == "netns" and name not in namespaces:
            namespaces.append(name)  # the name the label was made from: read again, it gets the same label
    return {"containers": containers, "namespaces": namespaces}


def report(diag: Dict[str, Any], after: Optional[Dict[str, Any]], selection: Dict[str, Any],
           runs: List[Dict[str, Any]], kept: List[Dict[str, Any]], refused: List[Dict[str, Any]],
           check_mode: bool) -> Dict[str, Dict[str, Any]]:
    """Per target: the causes before (selected kinds), removed, kept as intended, refused, after, layers not read."""
    layers = [_findings.LAYER_OF[k] for k in selection["kinds"]]
    out: Dict[str, Dict[str, Any]] = {}
    for label, t in diag["targets"].items():
        if selection["targets"] and label not in selection["targets"]:
            continue
        mine = [f for f in diag["findings"] if f.get("target") == label and f.get("remediation") in selection["kinds"]]
        made = [r for r in runs if r["target"] == label and r["result"].get("changed")]
        removed = [_findings.brief(f) for f in mine if any(_findings.covers(r, f) for r in made)]
        entry: Dict[str, Any] = {
            "before": [_findings.brief(f) for f in mine],
            "removed" if not check_mode else "would_remove": removed,
            "kept": [k for k in kept if k["target"] == label],
            "refused": [dict((k, r[k]) for k in ("remediation", "args", "reason")) for r in refused if r["target"] == label],
            "after": None,
            "not_read": [dict(layer=l, state=(t.get("layers") or {}).get(l, {}).get("state"),
                              reason=(t.get("layers") or {}).get(l, {}).get("reason"))
                         for l in _analyze.not_read(t.get("layers") or {}) if l in layers],
        }
        if after is not None:
            at = (after.get("targets") or {}).get(label)
            entry["after"] = [_findings.brief(f) for f in after["findings"]
                              if f.get("target") == label and f.get("remediation") in selection["kinds"]]
            if at is None:
                entry["not_read"].append(dict(layer="all", state="unread", reason="not read after the change"))
        out[label] = entry
    return out


def unverifiable(runs: List[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> List[str]:
    """Why a change made cannot be verified: its target, or the layer its findings are in, not read after it (then
    "nothing there" would not be known). A layer read in part is shown as such in the report."""
    if after is None:
        return []
    out = []
    for r in runs:
        if not r["result"].get("changed"):
            continue
        layer = _findings.LAYER_OF[r["remediation"]]
        t = (after.get("targets") or {}).get(r["target"])
        cov = ((t or {}).get("layers") or {}).get(layer) or {}
        if cov.get("state") not in ("read", "partial"):  # partial: the module's own re-read covered its scope
            out.append("cannot verify %s on %s: layer %s not read in full after the change (%s)" % (
                r["remediation"], r["target"], layer, cov.get("reason") or "target not read"))
    return out


def _names(rows: List[Dict[str, Any]]) -> str:
    return "; ".join("%s %s" % (r["id"], r["subject"]) for r in rows) or "none"


def lines(targets: Dict[str, Dict[str, Any]], check_mode: bool) -> List[str]:
    out = []
    for label, t in targets.items():
        gone = t.get("removed", t.get("would_remove")) or []
        verb = "would remove" if check_mode else "removed"
        text = "%s: before %d cause(s) [%s]; %s %d" % (label, len(t["before"]), _names(t["before"]), verb, len(gone))
        if t["kept"]:
            text += "; kept %d as intended [%s]" % (len(t["kept"]), "; ".join(
                "%s %s (allowed by %s)" % (k["id"], k["subject"], k["allowed_by"]) for k in t["kept"]))
        if t["refused"]:
            text += "; refused: %s" % "; ".join(r["reason"] for r in t["refused"])
        if t["after"] is not None:
            text += "; after %d [%s]" % (len(t["after"]), _names(t["after"]))
        for n in t["not_read"]:
            text += "; %s %s: %s" % ("n/a" if n["state"] == "unread" else "partly read", n["layer"], n["reason"])
        out.append(text)
    return out


class ActionModule(DiagnoseAction):
    """Runs the remediate module (and packetloss_facts when the allow-list needs the findings first) on the target;
    selection, allow-list, analysis, verification and probes in the controller's worker."""

    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        self._warnings: List[str] = []
        self._install = False
        self._prerequisites = None
        self._docker_sdk = "not_needed"
        result = ActionBase.run(self, tmp, task_vars)
        given = self._check_role(task_vars)
        if given is not None:  # in the role: its variables are the options (ROLE_ARGS), under any the task gives
            diagnosis = task_vars.get("packetloss_diagnosis")
            self._task.args = dict(role_args(given, self._templar.template(diagnosis) if diagnosis is not None else None),
                                   **self._task.args)
        _unused, args = self.validate_argument_spec(argument_spec=_findings.ARGUMENT_SPEC)
        if args["runs"] is not None:
            raise AnsibleActionFail("runs is set by the action plugin itself; do not give it in a task")
        try:
            selection = _findings.check_selection(args["findings"], args["min_severity"], args["targets"],
                                                  args["remediations"])
            containers = check_containers(args["containers"])
            thresholds = args["thresholds"] or None
            _analyze.merge_thresholds(thresholds)
            probes = [check_probe(p) for p in args["probes"]]
            if args["allow"]:
                allow_list()._expressions(args["allow"])  # every expression compiles, before anything is read
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        if not 0.0 <= args["probe_max_loss"] <= 100.0:
            raise AnsibleActionFail("probe_max_loss must be 0-100 (percent), got %s" % args["probe_max_loss"])
        host = str(args["host"] or task_vars.get("inventory_hostname") or "localhost")
        check_mode = bool(self._task.check_mode)
        base = dict(remediations=selection["kinds"], findings=selection["ids"], min_severity=selection["min_severity"],
                    targets=selection["targets"], containers=containers, namespaces=args["namespaces"],
                    thresholds=args["thresholds"], backup=args["backup"], backup_dir=args["backup_dir"],
                    verify=args["verify"], host=host)
        diagnosis = args["diagnosis"] if usable(args["diagnosis"], selection["kinds"]) else None
        allowed: Dict[int, str] = {}
        res: Optional[Dict[str, Any]] = None
        if diagnosis is None and not args["allow"]:
            # one round trip: the module reads, analyzes and selects on the target, acts, and reads again
            res = self._module(dict(base, runs=None), task_vars)
            diagnosis = _diagnosis.host_diagnosis(res.get("packetloss_before"), None, None, thresholds, host=host)
            plan = _findings.runs(diagnosis["findings"], selection)
        else:
            if diagnosis is None:  # diagnose first: the findings the allow-list is evaluated on
                facts = self._facts(dict(gather_subset=_findings.fact_layers(selection["kinds"]), containers=containers,
                                         namespaces=args["namespaces"], rules="drops"), task_vars)["packetloss"]
                diagnosis = _diagnosis.host_diagnosis(facts, None, None, thresholds, host=host)
            if args["allow"]:
                try:
                    allowed = allow_list().allowed_indexes(diagnosis["findings"], args["allow"])
                except ValueError as exc:
                    raise AnsibleActionFail(str(exc))
            plan = _findings.runs(diagnosis["findings"], selection, allowed)
            if plan["apply"]:
                todo = _findings.module_runs(plan["apply"])
                res = self._module(dict(base, runs=todo, **scope(containers, args["namespaces"], todo)), task_vars)
        made: List[Dict[str, Any]] = (res or {}).get("runs") or []
        after_facts = (res or {}).get("packetloss_after")
        after = _diagnosis.host_diagnosis(after_facts, None, None, thresholds, host=host) if after_facts else None
        still = _findings.still_there(made, after["findings"]) if after is not None else []
        unverified = unverifiable(made, after)
        targets = report(diagnosis, after, selection, made, plan["allowed"], plan["refused"], check_mode)
        text = lines(targets, check_mode)
        problems = []
        failed = [r for r in made if r["result"].get("failed")]
        if res is not None and res.get("failed") and not failed:
            problems.append(str(res.get("msg")))
        problems.extend("%s %s: %s" % (r["remediation"], r["target"], r["result"].get("msg")) for r in failed)
        problems.extend(r["reason"] for r in plan["refused"])
        if still:
            problems.append("still there after the remediation: %s" % "; ".join(
                "%s: %s %s" % (f["target"], f["id"], f["subject"]) for f in still))
        problems.extend(unverified)
        if after is not None and not failed and not still and not unverified:
            text.append("verified: every cause removed is gone")
        probe_rows = []
        if probes and not check_mode and not problems:
            probe_rows = [self._probe(p, args["probe_from"], task_vars) for p in probes]
            lossy = [r for r in probe_rows if r.get("failed") or (r.get("loss_percent") or 0) > args["probe_max_loss"]]
            if lossy:
                problems.append("probes losing more than %s%% after the remediation: %s" % (args["probe_max_loss"], "; ".join(
                    "%s:%s %s" % (r["item"]["host"], r["item"]["port"],
                                  "%s%%" % r["loss_percent"] if r.get("loss_percent") is not None else r.get("msg"))
                    for r in lossy)))
            else:
                text.append("every probe within %s%% loss" % args["probe_max_loss"])
        summary = dict(targets=targets, runs=made, refused=plan["refused"], still_there=still,
                       probes=[dict((k, r.get(k)) for k in ("item", "loss_percent", "sent", "received", "failed", "msg"))
                               for r in probe_rows])
        result.update(changed=any(r["result"].get("changed") for r in made), targets=targets, runs=made,
                      refused=plan["refused"], still_there=still, report=text,
                      ansible_facts=dict(packetloss_remediation=summary))
        if res is not None and "diff" in res:
            result["diff"] = res["diff"]
        for w in (res or {}).get("warnings") or []:
            if w not in self._warnings:
                self._warnings.append(str(w))
        if self._warnings:
            result["warnings"] = self._warnings
        if problems:
            result.update(failed=True, msg="; ".join(problems))
        else:
            result["msg"] = "; ".join(text)
        return result

    def _check_role(self, task_vars: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """In the remediate role, its variables checked against its meta/argument_specs.yml here, as the validation
        task Ansible puts first in a role does (same checks, same messages), before anything is read: the playbook
        imports the role with rolespec_validate false, which saves a round of workers over the fleet. Returns the
        variables checked (templated and converted), or None outside the role."""
        role = getattr(self._task, "_role", None)
        if role is None or not isinstance(getattr(role, "_role_path", None), str) or role.get_name() != ROLE:
            return None
        options = role_options(role._role_path)
        given = self._templar.template(combine_vars(dict((k, task_vars[k]) for k in options if k in task_vars),
                                                    getattr(role, "_role_params", None) or {}))
        errors, checked = role_check(options, given)
        if errors:
            raise AnsibleActionFail("Validation of arguments failed:\n%s" % "\n".join(errors), result=dict(
                argument_errors=errors, validate_args_context=dict(type="role", name=ROLE, argument_spec_name="main",
                                                                   path=role._role_path)))
        return checked

    def _module(self, module_args: Dict[str, Any], task_vars: Dict[str, Any]) -> Dict[str, Any]:
        res = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
        if res.get("failed") and "runs" not in res:
            raise AnsibleActionFail("%s failed: %s" % (MODULE, res.get("msg") or res.get("module_stderr") or res), result=res)
        return res


__all__ = ["ActionModule", "usable", "scope", "report", "lines", "unverifiable", "role_options", "role_check", "role_args"]
