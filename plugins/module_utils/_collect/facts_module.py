# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one body behind every fact module: argument spec, target resolution, collection, result.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import LAYERS, Collector
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.fileio import InputError, open_checked
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.limits import MAX_INTERVAL
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import (
    HOST, TARGET_ARGS, Target, TargetError, container_target, docker_sdk_state, netns_target, resolve, running_containers)

FACT_ARGS: Dict[str, Any] = dict(TARGET_ARGS, proc_root=dict(type="path"))


def _asks_containers(p: Dict[str, Any]) -> bool:
    """Whether O(containers) (packetloss_facts) asks for containers besides the main target."""
    return p.get("containers") not in (None, ["none"])


def _wants_docker(module: AnsibleModule) -> bool:
    """Whether packetloss_facts (the module with O(containers)) is asked for containers: it then says ``docker_sdk``."""
    p = module.params
    return "containers" in p and (bool(p.get("container")) or _asks_containers(p))


def _targets(module: AnsibleModule, warnings: List[str]) -> List[Target]:
    """The targets, the host (or netns, container) first; a Docker host whose containers cannot be listed for
    ``containers: [all]`` is a warning, a container asked for by name that cannot be resolved an error."""
    p = module.params
    extra = _asks_containers(p) or p.get("namespaces")
    if p.get("proc_root") and (p.get("netns") or p.get("container") or extra):
        module.fail_json(msg="proc_root reads a captured /proc tree: it cannot be combined with netns, container(s) or namespaces")
    try:
        targets = [resolve(p.get("netns"), p.get("container"))]
        containers = p.get("containers")
        if containers:
            if containers == ["all"]:
                try:
                    targets.extend(running_containers())
                except TargetError as exc:
                    warnings.append("containers not diagnosed: %s" % exc)
            elif containers != ["none"]:
                targets.extend(container_target(c) for c in containers)
        for ns in p.get("namespaces") or []:
            targets.append(netns_target(ns))
    except TargetError as exc:
        extra_result = dict(docker_sdk=docker_sdk_state()) if _wants_docker(module) else {}
        module.fail_json(msg=str(exc), **extra_result)
    seen, unique = set(), []
    for t in targets:
        if t.label not in seen:
            seen.add(t.label)
            unique.append(t)
    return unique


def _snapshot(module: AnsibleModule, collector: Collector, targets: List[Target], layers: List[str]) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    for target in targets:
        try:
            results[target.label] = collector.collect(target, layers)
        except TargetError as exc:
            module.fail_json(msg=str(exc))
    return results


def _facts(module: AnsibleModule, targets: List[Target], results: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    p = module.params
    facts = dict(results[targets[0].label])
    if len(targets) > 1 or _asks_containers(p) or p.get("namespaces"):
        facts["targets"] = results
    return facts


def check_src(module: AnsibleModule, key: str, path: str) -> None:
    """Fail unless ``path`` (option ``key``) is a regular file: a FIFO, device, directory or socket is refused
    without a blocking open (the size cap is checked when it is read)."""
    try:
        os.close(open_checked(path)[0])
    except InputError as exc:
        module.fail_json(msg="%s: %s" % (key, exc))


def run(module: AnsibleModule, layers: List[str], collector: Optional[Collector] = None) -> None:
    """Collect ``layers`` for the module's target(s) and exit with ``ansible_facts.packetloss``.

    With a positive ``interval`` parameter: two snapshots that far apart, in this one module run; the first
    goes to ``ansible_facts.packetloss_before``, the second to ``ansible_facts.packetloss``.
    """
    p = module.params
    if p.get("proc_root") and not os.path.isdir(p["proc_root"]):
        module.fail_json(msg="proc_root %s is not a directory" % p["proc_root"])
    if p.get("src"):  # tc_facts, iptables_facts
        check_src(module, "src", p["src"])
    interval = float(p.get("interval") or 0)
    if not 0 <= interval <= MAX_INTERVAL:
        module.fail_json(msg="interval must be 0-%d seconds, got %s" % (MAX_INTERVAL, p.get("interval")))
    if interval and p.get("proc_root"):
        module.fail_json(msg="interval takes two snapshots of the live system: it cannot be combined with proc_root")
    hold, resume = p.get("drop_reasons_hold"), p.get("drop_reasons_instance")
    if (hold or resume) and (interval or p.get("proc_root")):
        module.fail_json(msg="drop_reasons_hold and drop_reasons_instance record over two module runs of the live system: "
                             "they cannot be combined with interval or proc_root")
    if hold is not None or resume is not None:
        # compiled only where a recording is asked for (module code is compiled on the target on every run)
        from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.dropreasons import HOLD_MAX, is_instance_name
        if hold is not None and not 0 < hold <= HOLD_MAX:
            module.fail_json(msg="drop_reasons_hold must be 0-%d seconds, got %s" % (HOLD_MAX, hold))
        if resume is not None and not is_instance_name(resume):
            module.fail_json(msg="drop_reasons_instance must be the instance of a previous run's drop_reasons layer "
                                 "(netdiag-PID-EPOCH[-PIDNS]), got %r" % resume)
    collector = collector or Collector(proc_root=p.get("proc_root"))
    collector.interval = interval
    collector.hold, collector.resume = hold, resume
    target_warnings: List[str] = []
    targets = _targets(module, target_warnings)
    ansible_facts: Dict[str, Any] = {}
    try:  # a drop_reasons recording is undone however the module ends (fail_json and signals raise SystemExit)
        results = _snapshot(module, collector, targets, layers)
        if interval:
            ansible_facts["packetloss_before"] = _facts(module, targets, results)
            # every target's second snapshot starts at least interval seconds after its first one did
            wake = max(float(r.get("timestamp") or 0) for r in results.values()) + interval
            time.sleep(max(0.0, wake - time.time()))
            results = _snapshot(module, collector, targets, layers)
    finally:
        collector.close()
    ansible_facts["packetloss"] = _facts(module, targets, results)
    primary = results[targets[0].label]
    warnings = sorted(set(w for r in results.values() for w in r.get("warnings", [])) | set(target_warnings))
    for w in warnings:
        module.warn(w)
    extra = dict(docker_sdk=docker_sdk_state()) if _wants_docker(module) else {}
    module.exit_json(changed=False, ansible_facts=ansible_facts, collected_at=primary["collected_at"],
                     elapsed=round(sum(r["elapsed"] for r in results.values()), 6), **extra)


def layer_names(subset: List[str]) -> List[str]:
    """gather_subset as setup takes it: 'all', names, '!name' exclusions."""
    chosen = set()
    for item in subset:
        if item == "all":
            chosen.update(LAYERS)
    for item in subset:
        if item != "all" and not item.startswith("!"):
            chosen.add(item)
    for item in subset:
        if item.startswith("!"):
            chosen.discard(item[1:])
    return [l for l in LAYERS if l in chosen]


__all__ = ["FACT_ARGS", "HOST", "run", "layer_names", "check_src"]
