# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remediation driven by the diagnosis: which findings to act on, the module runs that remove them, and what the
diagnosis after the change must no longer show.

A finding that carries a ``remediation`` (``netem`` or ``random_drop``) names the module that removes its cause and,
in ``remediation_args``, the module's arguments as they are (the target's ``netns``/``container``, ``state: absent``
and the scope: the interface, or the family, table and chain). A module run removes every such cause within that
scope, so a run is planned once per distinct (remediation, arguments), and not at all when its scope also holds a
finding that must stay (allowed as intended, or not selected): that would remove more than asked. Pure functions,
no I/O: used by the remediate action on the controller and by the remediate module on the target alike.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.terms import FACT_LAYER, REMEDIATIONS, SEVERITIES, severity_rank
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import parse_label

TARGET_KEYS = ("netns", "container")
# the analyzer layer each remediation's findings are in
LAYER_OF = {"netem": "qdisc", "random_drop": "netfilter"}
# the remediate action's (and module's) options: plugins/modules/remediate.py documents them
ARGUMENT_SPEC: Dict[str, Any] = dict(
    remediations=dict(type="list", elements="str", choices=list(REMEDIATIONS), default=list(REMEDIATIONS)),
    findings=dict(type="list", elements="str", default=[]),
    min_severity=dict(type="str", choices=list(SEVERITIES), default="info"),
    targets=dict(type="list", elements="str", default=[]),
    allow=dict(type="list", elements="raw", default=[]),
    diagnosis=dict(type="dict"),
    containers=dict(type="list", elements="str", default=["all"]),
    namespaces=dict(type="list", elements="str", default=[]),
    thresholds=dict(type="dict", default={}),
    backup=dict(type="bool", default=True),
    backup_dir=dict(type="path", default="/var/backups/netdiag-packetloss"),
    verify=dict(type="bool", default=True),
    probes=dict(type="list", elements="dict", default=[]),
    probe_from=dict(type="str", choices=["controller", "host"], default="controller"),
    probe_max_loss=dict(type="float", default=0.0),
    host=dict(type="str"),
    runs=dict(type="list", elements="dict"),
)


def fact_layers(kinds: Iterable[str]) -> List[str]:
    """The fact layers (packetloss_facts' gather_subset) the findings of the remediations ``kinds`` come from."""
    return sorted(set(FACT_LAYER[LAYER_OF[k]] for k in kinds))


def check_selection(ids: Any, min_severity: Any, targets: Any, kinds: Any) -> Dict[str, Any]:
    """The selection options checked: ``ids`` (finding ids, empty for every one), ``min_severity``, ``targets`` (target
    labels, empty for every target) and ``kinds`` (the remediations allowed); ValueError naming what is wrong."""
    def strings(value: Any, what: str) -> List[str]:
        if value is None:
            return []
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ValueError("%s must be a list of strings, got %r" % (what, value))
        return list(value)
    ids, targets, kinds = strings(ids, "findings"), strings(targets, "targets"), strings(kinds, "remediations")
    if min_severity not in SEVERITIES:
        raise ValueError("min_severity must be one of %s, got %r" % (", ".join(SEVERITIES), min_severity))
    unknown = [k for k in kinds if k not in REMEDIATIONS]
    if unknown:
        raise ValueError("unknown remediation(s) %s (known: %s)" % (", ".join(unknown), ", ".join(REMEDIATIONS)))
    for label in targets:
        parse_label(label)
    return {"ids": ids, "min_severity": min_severity, "targets": targets, "kinds": kinds}


def remediable(f: Any) -> bool:
    return isinstance(f, dict) and f.get("remediation") in REMEDIATIONS and isinstance(f.get("remediation_args"), dict)


def selected(f: Dict[str, Any], selection: Dict[str, Any]) -> bool:
    """Whether the finding ``f`` carries a remediation the selection asks for."""
    return (remediable(f) and f["remediation"] in selection["kinds"]
            and (not selection["ids"] or f.get("id") in selection["ids"])
            and severity_rank(f.get("severity")) >= severity_rank(selection["min_severity"])
            and (not selection["targets"] or f.get("target") in selection["targets"]))


def _scope(args: Dict[str, Any]) -> Dict[str, Any]:
    return dict((k, v) for k, v in args.items() if k not in TARGET_KEYS + ("state",))


def covers(run: Dict[str, Any], f: Any) -> bool:
    """Whether the module run ``run`` ({remediation, target, args}) would remove the cause of finding ``f``: the same
    module and target, and ``f`` within every bound of the run's arguments."""
    if not remediable(f) or f["remediation"] != run["remediation"] or f.get("target") != run["target"]:
        return False
    theirs = _scope(f["remediation_args"])
    return all(theirs.get(k) == v for k, v in _scope(run["args"]).items())


def brief(f: Dict[str, Any]) -> Dict[str, Any]:
    out = dict((k, f.get(k)) for k in ("id", "severity", "target", "subject", "summary"))
    if f.get("allowed_by") is not None:
        out["allowed_by"] = f["allowed_by"]
    return out


def runs(findings: Sequence[Dict[str, Any]], selection: Dict[str, Any],
         allowed: Optional[Dict[int, str]] = None) -> Dict[str, List[Dict[str, Any]]]:
    """The module runs that remove the selected findings' causes, minus the allowed ones.

    ``allowed`` maps a finding's index in ``findings`` to the allow-list expression that selected it. Returns
    ``apply`` (one {remediation, target, args, findings} per distinct remediation and arguments, in the findings'
    order), ``allowed`` (selected findings kept as intended) and ``refused`` (runs not made because their scope also
    holds a finding that must stay: {remediation, target, args, findings, keeps, reason}).
    """
    allowed = allowed or {}
    planned: Dict[str, Dict[str, Any]] = {}
    kept: List[Dict[str, Any]] = []
    for i, f in enumerate(findings):
        if not selected(f, selection):
            continue
        if i in allowed:
            kept.append(brief(dict(f, allowed_by=allowed[i])))
            continue
        args = dict(f["remediation_args"])  # as they are: they reach the finding's target
        key = json.dumps([f["remediation"], f["target"], args], sort_keys=True, default=str)
        run = planned.setdefault(key, {"remediation": f["remediation"], "target": f["target"], "args": args,
                                       "findings": []})
        run["findings"].append(brief(f))
    out: Dict[str, List[Dict[str, Any]]] = {"apply": [], "allowed": kept, "refused": []}
    for run in planned.values():
        keeps = []
        for i, f in enumerate(findings):
            if not covers(run, f):
                continue
            if i in allowed:
                keeps.append(dict(brief(f), allowed_by=allowed[i], why="allowed"))
            elif not selected(f, selection):
                keeps.append(dict(brief(f), why="not selected"))
        if keeps:
            out["refused"].append(dict(run, keeps=keeps, reason=(
                "%s with %s would also remove %s; nothing of it was removed (narrow the allow-list or the selection, or "
                "remove by hand)" % (run["remediation"], _args_text(run["args"]),
                                     "; ".join("%s %s (%s)" % (k["id"], k["subject"], k["why"]) for k in keeps)))))
        else:
            out["apply"].append(run)
    return out


def _args_text(args: Dict[str, Any]) -> str:
    return ", ".join("%s=%s" % (k, args[k]) for k in sorted(args))


def still_there(applied: Iterable[Dict[str, Any]], after: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The findings of the diagnosis after the change that a run made was to remove."""
    applied = list(applied)
    return [brief(f) for f in after if any(covers(run, f) for run in applied)]


def module_runs(apply: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """What the remediate module takes as ``runs``: {remediation, target, args} (the module's args as they are)."""
    return [{"remediation": r["remediation"], "target": r["target"], "args": r["args"]} for r in apply]


def check_runs(value: Any) -> List[Dict[str, Any]]:
    """The remediate module's ``runs`` option checked: each {remediation, target, args}; ValueError otherwise."""
    out = []
    for run in value or []:
        if not isinstance(run, dict) or set(run) != {"remediation", "target", "args"}:
            raise ValueError("each run must be {remediation, target, args}, got %r" % (run,))
        if run["remediation"] not in REMEDIATIONS:
            raise ValueError("unknown remediation %r (known: %s)" % (run["remediation"], ", ".join(REMEDIATIONS)))
        if not isinstance(run["args"], dict):
            raise ValueError("the args of a run must be a dictionary, got %r" % (run["args"],))
        parse_label(run["target"])
        out.append(run)
    return out


__all__ = ["ARGUMENT_SPEC", "LAYER_OF", "fact_layers", "check_selection", "selected", "covers", "runs", "still_there", "module_runs", "check_runs", "brief"]
