#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: packetloss_facts
short_description: Gather every layer of the packet-loss walk in one call
version_added: 0.1.0
description:
  - Reads, in one module call, what the manual drop hunt reads with C(netstat -i), C(ip -s link), C(ethtool -S),
    C(tc -s qdisc), C(netstat -s), the conntrack sysctls and C(iptables -nvL) / C(nft list ruleset).
  - Layers C(tc) (see M(netdiag.packetloss.tc_facts)), C(netstat) (M(netdiag.packetloss.netstat_facts)),
    C(conntrack) (M(netdiag.packetloss.conntrack_facts)), C(iptables) (M(netdiag.packetloss.iptables_facts)) and
    C(drop_reasons).
  - C(drop_reasons) records the kernel's drop reasons (the C(skb:kfree_skb) tracepoint, with the reason and code location of
    every packet freed as dropped) over O(interval), through tracefs in a tracing instance of its own
    (C(/sys/kernel/tracing/instances/netdiag-PID-EPOCH)), aggregated by a hist trigger where the kernel has them,
    else read from a bounded event buffer (lost events are counted). tracefs is mounted if it is not, and the
    system is left as found (instance removed, tracefs unmounted), also when the module fails or is killed. The
    tracepoint carries no namespace, so the recording is per HOST, in the facts of the first target only. It needs
    root, a live system and O(interval) > 0; where it cannot be recorded the layer says why and the other layers
    are still returned (see docs/drop-reasons.md).
  - A layer that cannot be read is returned with C(available=false) and the reason; the others are still returned.
  - Inside a layer each source is read on its own; the layer's C(sources) says which were read and why others were
    not (see M(netdiag.packetloss.netstat_facts) and M(netdiag.packetloss.conntrack_facts)).
  - With O(containers) or O(namespaces), the host (or O(netns)/O(container)) and each extra target are collected
    and returned under C(ansible_facts.packetloss.targets), keyed C(host), C(container:NAME) and C(netns:NAME).
author: netdiag.packetloss contributors (@netdiag)
options:
  gather_subset:
    description:
      - Layers to collect, as C(setup) takes them; C(all), layer names, and C(!name) to leave one out.
    type: list
    elements: str
    default: [all]
  interfaces:
    description: Only these interfaces (for the C(tc) and C(netstat) layers). An unknown name is an error.
    type: list
    elements: str
  containers:
    description:
      - Also collect for Docker containers on the target, by name or id; C([all]) for every running container,
        C([none]) (the default) for none.
    type: list
    elements: str
    default: [none]
  namespaces:
    description: Also collect for these network namespaces (names in C(/run/netns) or paths).
    type: list
    elements: str
    default: []
  ethtool:
    description: Read the driver statistics of each interface (as C(ethtool -S) prints them).
    type: bool
    default: true
  interval:
    description:
      - Seconds between two snapshots taken in this one module run (0-3600); C(0), the default, takes one.
      - With two, C(ansible_facts.packetloss_before) holds the first and C(ansible_facts.packetloss) the second, the
        pair the P(netdiag.packetloss.packetloss_diagnosis#filter) filter turns into counter deltas and rates.
      - The module sleeps on the target in between, so two snapshots cost one round trip.
    type: float
    default: 0
  drop_reasons_hold:
    description:
      - Record drop reasons over TWO module runs (the first snapshot in this one, the second in the next, with
        O(interval=0) in both; the diagnose role does this when probes run between the snapshots).
      - This run starts the recording in a process of its own that keeps it for at most this many seconds (0-3900)
        and returns it in C(drop_reasons) with C(state=recording), C(instance) and C(held_until). The next run gives
        that C(instance) as O(drop_reasons_instance). Not asked for in time, the recording is removed when its hold runs
        out (and if its keeper is killed, by its watchdog or the next run's clean-up).
    type: float
  drop_reasons_instance:
    description:
      - The C(instance) of the C(drop_reasons) layer of the run that held a recording (O(drop_reasons_hold)). This run
        stops it and returns what it recorded, as one run with O(interval) does (C(kept=true)).
    type: str
extends_documentation_fragment:
  - netdiag.packetloss.target
  - netdiag.packetloss.target.facts
  - netdiag.packetloss.target.rules
"""

EXAMPLES = r"""
- name: Gather all layers for the host and every running container
  netdiag.packetloss.packetloss_facts:
    containers: [all]

- name: Only netfilter and qdiscs inside the container nginx
  netdiag.packetloss.packetloss_facts:
    container: nginx
    gather_subset: [iptables, tc]

- name: Two snapshots 5 seconds apart, in one round trip
  netdiag.packetloss.packetloss_facts:
    interval: 5

- name: Their findings, from the counter deltas
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.packetloss_before | netdiag.packetloss.packetloss_findings(ansible_facts.packetloss, interval=5) }}

- name: Read a /proc tree copied from a support bundle
  netdiag.packetloss.packetloss_facts:
    proc_root: /tmp/sosreport/proc
    gather_subset: [netstat, conntrack]
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    packetloss:
      description:
        - One key per collected layer (C(tc), C(netstat), C(conntrack), C(iptables)), each as its own fact module
          documents it, plus C(target), C(collected_at), C(timestamp), C(elapsed) and C(warnings).
        - C(targets) maps every target's label to the same structure when O(containers) or O(namespaces) is used.
      type: dict
      returned: always
      contains:
        drop_reasons:
          description:
            - The C(drop_reasons) layer (of the first target; the others hold C(scope=host) and C(recorded_with)).
            - C(available), C(scope) (always C(host)), C(method) (C(hist) or C(buffer)), C(events) (a list of
              C(reason), C(location), C(count), the largest first; C(reason) is null on kernels without reasons),
              C(total) events, C(lost) (events recorded but not aggregated, see C(lost_source)), C(duration) seconds,
              C(reasons_named), C(location_symbols), C(instance), C(mounted), C(stale_removed) (instances of killed
              runs removed) and C(notes).
            - In C(packetloss_before) (and in a run with O(drop_reasons_hold)), C(state=recording).
            - Unavailable - C(available=false) - with C(cause) (no_tracefs, no_event, no_root, denied, no_interval,
              not_live, failed), C(reason) and C(offered) (false when this kernel or this run does not offer the layer
              at all, rather than failing to read it).
          type: dict
          returned: when C(drop_reasons) is in O(gather_subset)
    packetloss_before:
      description: The first of the two snapshots O(interval) takes, structured as C(packetloss).
      type: dict
      returned: when O(interval) is positive
collected_at:
  description: When the collection (with O(interval), the second one) started (UTC, ISO 8601).
  type: str
  returned: always
elapsed:
  description: Seconds the collection (with O(interval), the second one) took, over all targets.
  type: float
  returned: always
docker_sdk:
  description:
    - Whether the Docker SDK for Python, which resolves containers, is C(present) on the target; C(missing) on a
      Docker host (C(/var/run/docker.sock) exists or C(DOCKER_HOST) is set) without it, C(not_needed) elsewhere.
    - With O(containers=[all]) on a Docker host whose containers cannot be listed, the host is still diagnosed and a
      warning says why the containers are not.
  type: str
  returned: when O(container) or O(containers) asks for containers, also on failure
  sample: present
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import Collector, LAYERS
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.facts_module import FACT_ARGS, layer_names, run


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            FACT_ARGS,
            gather_subset=dict(type="list", elements="str", default=["all"]),
            interfaces=dict(type="list", elements="str"),
            containers=dict(type="list", elements="str", default=["none"]),
            namespaces=dict(type="list", elements="str", default=[]),
            ethtool=dict(type="bool", default=True),
            rules=dict(type="str", choices=["all", "drops"], default="all"),
            rules_format=dict(type="str", choices=["full", "compact"], default="full"),
            interval=dict(type="float", default=0),
            drop_reasons_hold=dict(type="float"),
            drop_reasons_instance=dict(type="str"),
        ),
        mutually_exclusive=[("netns", "container"), ("drop_reasons_hold", "drop_reasons_instance")],
        supports_check_mode=True,
    )
    valid = set(LAYERS) | set("!" + l for l in LAYERS) | {"all"}
    bad = [s for s in module.params["gather_subset"] if s not in valid]
    if bad:
        module.fail_json(msg="unknown gather_subset value(s): %s (valid: all, %s, and !name)" % (", ".join(bad), ", ".join(LAYERS)))
    p = module.params
    run(module, layer_names(p["gather_subset"]),
        Collector(proc_root=p["proc_root"], interfaces=p["interfaces"], ethtool=p["ethtool"], rules=p["rules"], rules_format=p["rules_format"]))


if __name__ == "__main__":
    main()
