#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: remediate
short_description: Remove the causes of packet loss a diagnosis found, on every target of a host, in one task
version_added: 0.1.0
description:
  - The remediate role's one task per host, usable on its own. It acts on findings - those that carry a
    C(remediation) (C(qdisc.netem) with M(netdiag.packetloss.netem), C(netfilter.random_drop) with
    M(netdiag.packetloss.random_drop)), chosen by O(findings), O(min_severity), O(targets) and O(remediations), minus
    those the allow-list O(allow) selects as intended - and runs each finding's module with the finding's
    C(remediation_args) as they are, once per distinct module and arguments, for the host, its containers and
    namespaces in one module run on the target. The M(netdiag.packetloss.random_drop) runs of one target are one
    plan from one reading of its rulesets - one restore per ruleset and table, one backup and one re-read - each run
    removing exactly what it would remove alone and keeping its own result. Then it diagnoses again and reports per target what was there
    before, what was removed, what was kept and what is there after.
  - The findings come from O(diagnosis) (the C(packetloss_diagnosis) fact the diagnose role or
    M(netdiag.packetloss.diagnose) left) when it read the C(qdisc) and C(netfilter) layers of its targets; without
    it, the C(tc) and C(iptables) layers are read first and analyzed with the diagnose role's analyzer (on the target,
    in the same module run, when there is no O(allow); otherwise on the controller, then a second run acts).
  - A module run removes every cause within its arguments (an interface's netem qdiscs, a table and chain's
    random-drop rules). When that scope also holds a finding that must stay - allowed by O(allow), or not selected -
    the run is not made, the task fails and says which finding is in the way; nothing of that scope is removed.
  - The verification is the modules' own (each re-reads what it changed and fails if a removed cause is still
    there) and a diagnosis after the change - the same gathering and analysis - which fails the task if a finding
    in the scope of a run made is still (or again) there. With O(probes), the probes run after the change and the
    task fails if one loses more than O(probe_max_loss) percent.
  - Check mode is passed to the modules, which report what they would remove and the diff, and change nothing;
    then there is no verification and no probe. A finding whose layer was not read in full is shown as not read
    (C(n/a)), never as clean.
  - An action plugin; the module runs on the target and needs what M(netdiag.packetloss.packetloss_facts),
    M(netdiag.packetloss.netem) and M(netdiag.packetloss.random_drop) need, and root.
author: netdiag.packetloss contributors (@netdiag)
options:
  remediations:
    description: The remediations that may be applied, C(netem) and/or C(random_drop).
    type: list
    elements: str
    choices: [netem, random_drop]
    default: [netem, random_drop]
  findings:
    description: Finding ids to act on (for example C(qdisc.netem)); empty for every finding that carries a remediation.
    type: list
    elements: str
    default: []
  min_severity:
    description: Act only on findings of at least this severity.
    type: str
    choices: [info, warning, critical]
    default: info
  targets:
    description:
      - Target labels to act on (C(host), C(container:NAME), C(netns:NAME)); empty for every target of the host.
    type: list
    elements: str
    default: []
  allow:
    description:
      - Intended findings, left in place - the compliance gate's allow-list form. Each entry a JMESPath expression
        over the host's findings, or a dictionary C({expression, reason}); for example
        C([?id=='qdisc.netem' && target=='container:chaos']).
      - Evaluated on the controller (it needs the Python library C(jmespath) there); every expression is compiled
        before anything is read, so a typo fails at once.
    type: list
    elements: raw
    default: []
  diagnosis:
    description:
      - A diagnosis at hand (C(packetloss_diagnosis)), used instead of reading the host first when it has the
        C(qdisc) and C(netfilter) layers of its targets (read, or read in part; a layer left out makes it unusable).
      - The modules read the live state themselves; they remove what is there at that moment within the findings'
        arguments.
    type: dict
  containers:
    description:
      - Docker containers to read besides the host when there is no usable O(diagnosis), by name or id; C(all),
        C(none).
    type: list
    elements: str
    default: [all]
  namespaces:
    description: Extra network namespaces (names in C(/run/netns) or paths) to read, each its own target.
    type: list
    elements: str
    default: []
  thresholds:
    description: Threshold overrides by finding id or layer, as M(netdiag.packetloss.diagnose) takes them.
    type: dict
    default: {}
  backup:
    description: Have the modules save what they change (files of mode 0600 in O(backup_dir)) before changing it.
    type: bool
    default: true
  backup_dir:
    description: Where the backups go on the host.
    type: path
    default: /var/backups/netdiag-packetloss
  verify:
    description: After a change, diagnose again and fail if a cause in the scope of a run made is still there.
    type: bool
    default: true
  probes:
    description:
      - Probes to run after the change, each a dictionary as M(netdiag.packetloss.diagnose) takes them (C(host),
        C(port), optionally C(mode), C(count), C(interval), C(timeout), C(family), C(target), C(name)).
    type: list
    elements: dict
    default: []
  probe_from:
    description: Where the probes run from, C(controller) (its process) or C(host) (M(netdiag.packetloss.probe) there).
    type: str
    choices: [controller, host]
    default: controller
  probe_max_loss:
    description: Fail when a probe loses more than this percentage after the change.
    type: float
    default: 0.0
  host:
    description: The host's name in the findings (C(host) field, which O(allow) expressions may use); its inventory name by default.
    type: str
  runs:
    description:
      - Internal, set by the action plugin for the module on the target - the module runs decided on the
        controller, each C({remediation, target, args}). Not to be given in a task.
    type: list
    elements: dict
attributes:
  action:
    support: full
    description: An action plugin; selection, the allow-list and the analysis run on the controller, the module on the target.
  check_mode:
    support: full
    description: The modules report what they would remove, and the diff; nothing changes, nothing is verified or probed.
  diff_mode:
    support: full
    description:
      - The diffs of every module run (C(iptables-save) or C(nft list table) form, qdiscs as C(tc) shows them); the
        M(netdiag.packetloss.random_drop) runs of one target give one diff per ruleset changed.
  idempotent:
    support: full
    description: A second run finds nothing to remove and reports no change.
  platform:
    support: full
    platforms: posix
    description: Linux only.
seealso:
  - module: netdiag.packetloss.diagnose
  - module: netdiag.packetloss.netem
  - module: netdiag.packetloss.random_drop
"""

EXAMPLES = r"""
- name: Remove every netem qdisc and random-drop rule the diagnosis finds on the host and its containers
  netdiag.packetloss.remediate:

- name: Keep the chaos drill's netem, remove the rest, critical findings only
  netdiag.packetloss.remediate:
    min_severity: critical
    allow:
      - expression: "[?id=='qdisc.netem' && target=='container:chaos']"
        reason: chaos drill, ticket OPS-42

- name: After the diagnose role in the same play - act on its diagnosis, in the namespace lab1 only
  netdiag.packetloss.remediate:
    diagnosis: "{{ packetloss_diagnosis }}"
    targets: ["netns:lab1"]
"""

RETURN = r"""
targets:
  description:
    - Per target label, C(before) (the findings with a remediation there before, brief), C(removed) (those whose
      cause a run removed, or would in check mode), C(kept) (allowed as intended), C(refused) (runs not made),
      C(after) (the findings with a remediation there after the change; C(null) without verification) and
      C(not_read) (the C(qdisc) / C(netfilter) layers not read in full, with the reason).
  type: dict
  returned: success
runs:
  description:
    - The module runs made (in check mode, planned), each with C(remediation), C(target), C(args), C(findings) and the
      module's C(result) (C(changed), C(removed), C(steps), C(backup_files), C(msg), ...).
  type: list
  elements: dict
  returned: always
refused:
  description: Runs not made because their scope holds a finding that must stay (C(keeps), C(reason)).
  type: list
  elements: dict
  returned: always
still_there:
  description: Findings in the scope of a run made that the diagnosis after the change still shows.
  type: list
  elements: dict
  returned: always
report:
  description: The before/after lines per target, as the remediate role prints them.
  type: list
  elements: str
  returned: always
ansible_facts:
  description: The diagnosis after the change (before it in check mode or when nothing changed).
  returned: success
  type: dict
  contains:
    packetloss_remediation:
      description: C(targets), C(runs), C(refused), C(still_there) and C(probes) of this run.
      type: dict
msg:
  description: What was removed, kept, refused and verified, in one line.
  type: str
  returned: always
"""

from typing import Any, Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.terms import remediable_rows
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import Collector
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.facts_module import _snapshot, _targets
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import findings as _findings


def gather(module: AnsibleModule, kinds: List[str]) -> Dict[str, Any]:
    """The fact layers the remediations read (tc, iptables) of the host, its containers and namespaces."""
    layers = _findings.fact_layers(kinds)
    warnings: List[str] = []
    targets = _targets(module, warnings)
    collector = Collector(rules="drops")
    try:
        results = _snapshot(module, collector, targets, layers)
    finally:
        collector.close()
    # the targets only (the action reads them: host_diagnosis), not the host's layers a second time at the top as
    # packetloss_facts returns them
    facts: Dict[str, Any] = {"targets": results}
    for w in sorted(set(w for r in results.values() for w in r.get("warnings", [])) | set(warnings)):
        module.warn(w)
    return facts


def main() -> None:
    module = AnsibleModule(argument_spec=_findings.ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    if p["allow"] or p["probes"] or p["diagnosis"]:
        module.fail_json(msg="allow, probes and diagnosis are handled by the remediate action plugin on the controller")
    try:
        selection = _findings.check_selection(p["findings"], p["min_severity"], p["targets"], p["remediations"])
        given = _findings.check_runs(p["runs"]) if p["runs"] is not None else None
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    before: Optional[Dict[str, Any]] = None
    refused: List[Dict[str, Any]] = []
    if given is None:
        # no decision from the controller (no allow-list): diagnose here, with the diagnose role's analyzer
        before = gather(module, selection["kinds"])
        runs = []
        # the analyzer makes a finding that carries a remediation of a netem qdisc or a random-drop rule only: a host
        # with neither has nothing to remove, and does not compile the analyzer (module code reaches the target in a
        # zip and is compiled on every run; the analyzer is the largest part)
        if any(remediable_rows(t, selection["kinds"]) for t in before["targets"].values()):
            from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import analyze_host
            try:
                plan = _findings.runs(analyze_host(before["targets"], None, None, p["thresholds"] or None), selection)
            except ValueError as exc:
                module.fail_json(msg=str(exc))
            runs, refused = _findings.module_runs(plan["apply"]), plan["refused"]
    else:
        runs = given
    if not runs:
        module.exit_json(changed=False, msg="nothing to remove", runs=[], refused=refused, packetloss_before=before,
                         packetloss_after=None)
    # the remediation modules' code is compiled only on a host where something is to be removed
    from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import batch as _batch
    from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import RemediationError
    # every run's arguments are checked against its module's own spec before anything changes
    try:
        for run in runs:
            _batch.check_args(run["remediation"], run["args"])
    except RemediationError as exc:
        module.fail_json(msg="%s; nothing was changed" % exc)
    done, diffs = [], []
    # the random_drop runs of a target are planned together: one reading of its rulesets, one re-read
    results = _batch.apply_all(runs, dict(backup=p["backup"], backup_dir=p["backup_dir"]), module.check_mode,
                               bool(module._diff))
    for run, res in zip(runs, results):
        for w in res.pop("warnings", []):
            module.warn("%s %s: %s" % (run["remediation"], run["target"], w))
        diffs.extend(res.pop("diff", []) or [])
        done.append(dict(run, result=res))
    changed = any(r["result"].get("changed") for r in done)
    after = gather(module, selection["kinds"]) if p["verify"] and changed and not module.check_mode else None
    failed = [r for r in done if r["result"].get("failed")]
    result: Dict[str, Any] = dict(changed=changed, runs=done, refused=refused, packetloss_before=before,
                                  packetloss_after=after)
    if module._diff:
        result["diff"] = diffs
    if failed:
        why = ["%s %s (%s): %s" % (r["remediation"], r["target"], _args(r["args"]), r["result"].get("msg")) for r in failed]
        module.fail_json(msg="; ".join(why), **result)
    module.exit_json(msg="%d module run(s), %d changed" % (len(done), sum(1 for r in done if r["result"].get("changed"))),
                     **result)


def _args(args: Dict[str, Any]) -> str:
    return ", ".join("%s=%s" % (k, args[k]) for k in sorted(args))


if __name__ == "__main__":
    main()
