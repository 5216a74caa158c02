#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: netstat_facts
short_description: Interface, driver, protocol and softnet counters
version_added: 0.1.0
description:
  - The counters behind C(netstat -i), C(ip -s link) and C(ethtool -S) (interface rx/tx packets, errors, dropped,
    fifo/overrun, missed, read over netlink; driver statistics where the driver has them), C(netstat -s)
    (C(/proc/net/snmp), C(/proc/net/netstat) and C(/proc/net/snmp6) as section, counter, integer) and
    C(/proc/net/softnet_stat) per CPU.
author: netdiag.packetloss contributors (@netdiag)
options:
  interfaces:
    description: Only these interfaces. An unknown interface is an error.
    type: list
    elements: str
  ethtool:
    description: Read the driver statistics of each interface.
    type: bool
    default: true
extends_documentation_fragment:
  - netdiag.packetloss.target
  - netdiag.packetloss.target.facts
"""

EXAMPLES = r"""
- name: Counters of the host
  netdiag.packetloss.netstat_facts:

- name: SYNs to LISTEN sockets dropped, inside a namespace
  netdiag.packetloss.netstat_facts:
    netns: blue
- ansible.builtin.debug:
    msg: "{{ ansible_facts.packetloss.netstat.snmp.TcpExt.ListenDrops }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    packetloss:
      description: C(netstat) holds this layer; C(target), C(collected_at), C(elapsed) say where and when.
      type: dict
      returned: always
      contains:
        netstat:
          description:
            - C(interfaces) (name to C(stats), C(driver_stats), C(operstate), C(mtu), C(qdisc), C(kind)),
              C(snmp) (section to counter to integer; C(Ip), C(Icmp), C(Tcp), C(Udp), C(TcpExt), C(IpExt), C(Ip6), ...),
              C(ipv6) and C(softnet) (a list per CPU of C(processed), C(dropped), C(time_squeeze), ...).
            - Each of the sources C(interfaces) (netlink, or C(net/dev) with O(proc_root)), C(snmp) (C(net/snmp)),
              C(netstat) (C(net/netstat)), C(snmp6) (C(net/snmp6)) and C(softnet) (C(net/softnet_stat)) is read on its
              own; C(interfaces) and C(softnet) are null when not read, C(snmp) holds the sections of those read.
            - C(sources) maps each source of the layer to C(path) (the file, or C(netlink)), C(read) (bool) and
              C(reason) (why it was not read, else null); a source not read leaves its key null. The layer has
              C(available=false) only when no source could be read (C(sources) is then returned too).
            - With O(proc_root), C(sources.interfaces.lacks) lists what a live read gets over netlink and ethtool that
              a copied tree (C(net/dev) only) cannot give.
          type: dict
          returned: always
          sample:
            available: true
            interfaces: null
            snmp: {Tcp: {RetransSegs: 12}, TcpExt: {ListenDrops: 0}}
            ipv6: true
            softnet: [{cpu: 0, processed: 1200, dropped: 0, time_squeeze: 0}]
            sources:
              interfaces: {path: /tmp/sos/proc/net/dev, read: false, reason: "/tmp/sos/proc/net/dev: does not exist"}
              snmp: {path: /tmp/sos/proc/net/snmp, read: true, reason: null}
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
        argument_spec=dict(FACT_ARGS, interfaces=dict(type="list", elements="str"), ethtool=dict(type="bool", default=True)),
        mutually_exclusive=[("netns", "container")],
        supports_check_mode=True,
    )
    p = module.params
    run(module, ["netstat"], Collector(proc_root=p["proc_root"], interfaces=p["interfaces"], ethtool=p["ethtool"]))


if __name__ == "__main__":
    main()
