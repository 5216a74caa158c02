#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: tc_facts
short_description: Read every qdisc with its decoded options and statistics, over netlink
version_added: 0.1.0
description:
  - What C(tc -s qdisc show) prints, as structured facts, read over rtnetlink on a plain netlink socket (no C(tc) binary and no Python library needed).
  - For netem, the options are decoded from the kernel's raw attribute (loss, duplicate, corrupt and reorder as
    percentages, delay and jitter in milliseconds, rate, limit, correlations).
author: netdiag.packetloss contributors (@netdiag)
options:
  interfaces:
    description: Only the qdiscs of these interfaces. An unknown interface is an error.
    type: list
    elements: str
  src:
    description:
      - A file holding saved C(tc -s qdisc show) text (as sosreports keep it), read instead of the live system.
      - It must be a regular file of at most 4 MiB; a FIFO, device or directory, or a larger file, is refused.
    type: path
extends_documentation_fragment:
  - netdiag.packetloss.target
  - netdiag.packetloss.target.facts
"""

EXAMPLES = r"""
- name: Qdiscs inside the container nginx
  netdiag.packetloss.tc_facts:
    container: nginx

- name: Show netem qdiscs
  ansible.builtin.debug:
    msg: "{{ ansible_facts.packetloss.tc.qdiscs | selectattr('kind', 'equalto', 'netem') }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    packetloss:
      description: C(tc) holds this layer; C(target), C(collected_at), C(elapsed) say where and when.
      type: dict
      returned: always
      contains:
        tc:
          description:
            - C(available), C(reason) when not, C(source) and C(qdiscs).
            - C(sources.qdiscs) says where they were read (the O(src) file, or C(netlink)); with O(proc_root) and no
              O(src) the layer is unavailable, as qdiscs are given over netlink only, never in C(/proc).
          type: dict
          returned: always
          contains:
            qdiscs:
              description:
                - One row per qdisc, of the same shape whether read over netlink or from a saved O(src).
                - C(interface), C(ifindex) (null from O(src)), C(kind), C(handle) (V(8001:), V(1:10)), C(parent)
                  (V(root), V(ingress) or the parent class as C(MAJOR:MINOR) in hex, V(0:1) for what C(tc) prints
                  as V(:1)), C(root) (true for the root qdisc), C(refcnt) (as C(tc) prints it; null over netlink),
                  C(options), C(stats) and C(line) (the qdisc as C(tc qdisc show) prints it; over netlink, its kind,
                  handle, device, parent and, for netem, its options).
                - C(options) of netem are decoded (loss, duplicate, corrupt and reorder in percent, delay and jitter
                  in milliseconds, rate in bit/s, limit, correlations, loss models, slot, seed; what is off is null);
                  tbf and fifo options likewise; other kinds' options are their words (O(src)) or their size.
                - C(stats) has C(bytes), C(packets), C(drops), C(overlimits), C(requeues), C(backlog_bytes),
                  C(backlog_packets) and C(qlen) (the same number, packets in the queue); null when O(src) was saved
                  without C(-s).
              type: list
              elements: dict
              returned: when available
          sample:
            available: true
            source: netlink
            qdiscs:
              - interface: eth0
                ifindex: 2
                kind: netem
                handle: "8001:"
                parent: root
                root: true
                refcnt: null
                options: {limit: 1000, loss: 30.0, loss_model: random, delay_ms: null, jitter_ms: null, duplicate: null}
                stats: {bytes: 56178, packets: 191, drops: 82, overlimits: 0, requeues: 0, backlog_bytes: 0,
                        backlog_packets: 0, qlen: 0}
                line: "qdisc netem 8001: dev eth0 root limit 1000 loss 30%"
collected_at:
  description: When the collection started (UTC, ISO 8601).
  type: str
  returned: always
elapsed:
  description: Seconds the collection took.
  type: float
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import Collector
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.facts_module import FACT_ARGS, run


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(FACT_ARGS, interfaces=dict(type="list", elements="str"), src=dict(type="path")),
        mutually_exclusive=[("netns", "container"), ("src", "netns"), ("src", "container")],
        supports_check_mode=True,
    )
    p = module.params
    run(module, ["tc"], Collector(proc_root=p["proc_root"], interfaces=p["interfaces"], tc_src=p["src"]))


if __name__ == "__main__":
    main()
