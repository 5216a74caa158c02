#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: diagnose
short_description: Find where a host, its containers and namespaces drop packets, in one task
version_added: 0.1.0
description:
  - The diagnose role's one task per host, usable on its own. It runs M(netdiag.packetloss.packetloss_facts) on the
    target with O(interval), so both snapshots are taken in one module run (one round trip, the module sleeps on the
    target in between), analyzes them in the controller with the same functions as the
    P(netdiag.packetloss.packetloss_diagnosis#filter) filter, and sets the diagnosis as facts.
  - With O(probes), the first snapshot, the probes and the second snapshot are separate steps, so the probes run
    during the interval; the probes from the controller run in the controller's process.
  - Reads only (only the rules that can drop are listed); nothing changes on the target, unless
    O(install_prerequisites) is set.
  - An action plugin; it needs the fact module's requirements on the target (see M(netdiag.packetloss.packetloss_facts)).
author: netdiag.packetloss contributors (@netdiag)
options:
  gather_subset:
    description: Layers to read, as M(netdiag.packetloss.packetloss_facts) takes them.
    type: list
    elements: str
    default: [all]
  containers:
    description:
      - Docker containers on the host to diagnose besides the host itself, by name or id; C(all) for every running
        container, C(none) for none. C(all) and C(none) cannot be mixed with names.
    type: list
    elements: str
    default: [all]
  namespaces:
    description: Extra network namespaces (names in C(/run/netns) or paths), each diagnosed as its own target.
    type: list
    elements: str
    default: []
  interval:
    description:
      - Seconds between the two snapshots (0-3600); the counter findings come from the deltas over it.
      - C(0) takes one snapshot, for the configuration findings only (netem qdiscs, random-drop rules, conntrack usage).
    type: float
    default: 5
  drop_reasons:
    description:
      - Record the kernel's drop reasons (C(skb:kfree_skb), per host) over O(interval) where the kernel offers them (the
        C(drop_reasons) layer of M(netdiag.packetloss.packetloss_facts)). C(false) leaves the layer out.
      - Recorded only when both snapshots are one module run, that is without O(probes).
    type: bool
    default: true
  thresholds:
    description:
      - 'Threshold overrides by finding id or layer, for example C({"netfilter.drop_hits": {"severity": "info"}}).'
      - An unknown id, layer or setting is an error, before anything is read.
    type: dict
    default: {}
  probes:
    description:
      - TCP probes to run during the interval, each a dictionary with C(host) and C(port), and optionally C(mode)
        (C(connect) or C(syn)), C(count), C(interval), C(timeout) and C(family) as M(netdiag.packetloss.probe) takes
        them, C(target) (the label of the target the probe measures, C(host) by default) and C(name).
      - A probe that cannot run is reported in the diagnosis; it does not fail the task.
    type: list
    elements: dict
    default: []
  probe_from:
    description:
      - Where the probes run from. C(controller) runs them in the controller's process (as the user running
        C(ansible-playbook); C(syn) mode needs CAP_NET_RAW there); C(host) runs M(netdiag.packetloss.probe) on the
        managed host.
    type: str
    choices: [controller, host]
    default: controller
  host:
    description: The host's name in the diagnosis and the reports; its inventory name by default.
    type: str
  install_prerequisites:
    description:
      - Install what the fact modules need on the target beyond Python, from the distribution's packages - the Docker
        SDK for Python (C(python3-docker), C(python-docker) on Arch) on a Docker host that lacks it and whose
        containers are to be diagnosed - with the package manager module M(ansible.builtin.package) would pick.
      - The fact module says whether the SDK is missing, so this costs nothing where it is there. Where it is
        missing, the SDK is installed and the host read again (with an O(interval), the first run on such a host
        takes it twice).
      - Installing changes the target and needs root (C(become)); the task then reports C(changed). In check mode it
        reports what it would install (the C(apt) module needs C(python3-apt) for that).
    type: bool
    default: false
attributes:
  action:
    support: full
    description: An action plugin; the fact module runs on the target, the analysis on the controller.
  check_mode:
    support: full
    description: It only reads, and runs unchanged in check mode; O(install_prerequisites) reports what it would
      install.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  facts:
    support: full
    description: Sets C(packetloss_diagnosis), C(packetloss_findings) and C(packetloss_key_rates).
  idempotent:
    support: full
    description: It changes nothing, or installs O(install_prerequisites)' package once.
seealso:
  - module: netdiag.packetloss.packetloss_facts
  - module: netdiag.packetloss.probe
  - module: netdiag.packetloss.report_files
"""

EXAMPLES = r"""
- name: Diagnose the host and every container, counters over 5 seconds
  netdiag.packetloss.diagnose:
    interval: 5

- name: Configuration findings only, the host alone, no Docker needed
  netdiag.packetloss.diagnose:
    interval: 0
    containers: none

- name: Probe nginx from the controller while the counters are read
  netdiag.packetloss.diagnose:
    probes:
      - {host: 172.17.0.2, port: 80, mode: syn, count: 20, target: "container:nginx"}
"""

RETURN = r"""
ansible_facts:
  description: The diagnosis.
  returned: success
  type: dict
  contains:
    packetloss_diagnosis:
      description: The host's diagnosis (findings, coverage and probes per target), as docs/report-schema.md describes.
      type: dict
    packetloss_findings:
      description: Every finding of every target (C(packetloss_diagnosis.findings)).
      type: list
      elements: dict
    packetloss_key_rates:
      description: Per target, the key drop counters' rates per second over the interval (empty with interval 0).
      type: dict
worst:
  description: The worst severity of all findings (C(critical), C(warning), C(info)), null when there is none.
  type: str
  returned: success
counts:
  description: The number of findings per severity.
  type: dict
  returned: success
msg:
  description: The findings of at least C(warning), one per C(;)-separated part, or that there is none.
  type: str
  returned: success
prerequisites:
  description: What O(install_prerequisites) did.
  type: dict
  returned: when O(install_prerequisites) is true
  contains:
    changed:
      description: Whether a package was installed (or would be, in check mode).
      type: bool
    packages:
      description: The packages it installed (or would, in check mode); empty when nothing was missing.
      type: list
      elements: str
    manager:
      description: The package manager module used.
      type: str
      returned: when a package was missing
    docker_sdk:
      description:
        - The Docker SDK before this task - C(present), C(missing) (on a Docker host), or C(not_needed) (no Docker,
          or no container asked for).
      type: str
"""
