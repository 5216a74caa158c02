#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_facts
short_description: iptables, ip6tables and nftables rulesets with counters, and every random-drop rule
version_added: 0.1.0
description:
  - Reads the rulesets of iptables and ip6tables from both backends where they hold tables (iptables-legacy and
    iptables-nft, through C(iptables-legacy-save -c) and C(iptables-nft-save -c); a warning says when both hold
    tables), and the native nftables ruleset from C(nft -j list ruleset).
  - Tables that iptables-nft manages are read through C(iptables-nft-save), because C(nft -j) shows an iptables
    statistic match only as an opaque C(xt) expression.
  - Each rule carries family, backend, table, chain, position, the rule spec as printed, its target or verdict,
    parsed matches, counters, a C(statistic) block and C(random_drop), true for a rule that drops at random
    (the statistic match in random or nth mode, or nft C(numgen random) / C(meta random), with a DROP or REJECT
    verdict), false for rules that only jump elsewhere at random (kube-proxy's load balancing) and for plain DROP rules.
  - Legacy tables are looked for in C(/proc/net/ip_tables_names); no C(*-save) command runs for a backend
    that holds no table.
author: netdiag.packetloss contributors (@netdiag)
options:
  src:
    description:
      - A file with saved rules, read instead of the live system. JSON is taken as C(nft -j list ruleset) output,
        anything else as C(iptables-save -c) output of family O(src_family).
      - It must be a regular file of at most 32 MiB; a FIFO, device or directory, or a larger file, is refused.
    type: path
  src_family:
    description: The family of an C(iptables-save) file given as O(src).
    type: str
    choices: [ipv4, ipv6]
    default: ipv4
extends_documentation_fragment:
  - netdiag.packetloss.target
  - netdiag.packetloss.target.facts
  - netdiag.packetloss.target.rules
"""

EXAMPLES = r"""
- name: Rulesets inside the container nginx
  netdiag.packetloss.iptables_facts:
    container: nginx

- name: Every rule of a kube-proxy node, compact (the rules that can drop stay dictionaries)
  netdiag.packetloss.iptables_facts:
    rules_format: compact

- name: Random-drop rules, with their hit counters
  ansible.builtin.debug:
    msg: "{{ ansible_facts.packetloss.iptables.random_drop_rules | map(attribute='spec') }}"

- name: A ruleset saved on another machine
  netdiag.packetloss.iptables_facts:
    src: /tmp/iptables-save.txt
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    packetloss:
      description: C(iptables) holds this layer; C(target), C(collected_at), C(elapsed) say where and when.
      type: dict
      returned: always
      contains:
        iptables:
          description:
            - C(rulesets) (one per family and backend, with tables, chains and their policies and policy counters),
              C(rules) (every rule, flat), C(random_drop_rules), C(rule_count) and C(notes).
            - C(available) is false when nothing could be read (C(reason) says why); C(complete) is false when some
              ruleset could not be read; C(unread) lists each one that was not (see below). A layer that is not
              complete is not clean - its C(rule_count) and C(random_drop_rules) cover only what was read.
            - A random drop that iptables-nft put into a table also holding native nft rules is read from
              C(nft -j), where the statistic match is an opaque C(xt) expression; it is listed with
              C(random_drop=true), and its C(statistic) has C(source=xt statistic), C(mode=random or nth) and no
              probability (null). An older nft prints such an expression without a name; a drop rule holding one
              has C(random_drop_unknown=true) and its table is listed in C(unread) (cause V(unreadable)).
          type: dict
          returned: always
          contains:
            available:
              description: False when no ruleset could be read at all (not root, binaries missing, ...).
              type: bool
            reason:
              description: Why the layer is not available (the C(reason)s of C(unread), joined).
              type: str
              returned: when available is false
            complete:
              description: True when every ruleset that exists here was read (always true for O(src)).
              type: bool
            rules:
              description:
                - The rules, flat, each a dictionary (C(family), C(backend), C(table), C(chain), C(position), C(spec),
                  C(target) or C(verdict), C(matches), C(counters), C(statistic), C(random_drop), ...).
                - Every rule with O(rules=all) and O(rules_format=full); the rules that can drop with O(rules=drops) or
                  O(rules_format=compact).
              type: list
              elements: dict
            rules_listed:
              description: V(all) or V(drops), what C(rules) lists (with O(rules_format=compact), V(drops) unless O(rules=all)).
              type: str
            rules_format:
              description: V(full) or V(compact), as asked by O(rules_format).
              type: str
            rule_lines:
              description:
                - With O(rules_format=compact) only, every rule that O(rules) selects as text, in one entry per chain
                  with C(family), C(backend), C(table), C(chain) and C(rules), the chain's rules in order (a rule's
                  position is its index plus one), each C([packets:bytes] spec), or the spec alone for a rule without
                  a counter.
                - On a kube-proxy node of 10,000 rules this returns about three times faster than O(rules_format=full)
                  in the whole module run (docs/fleet.md has the numbers).
              type: list
              elements: dict
              returned: with O(rules_format=compact)
              sample:
                - {family: ipv4, backend: nft, table: filter, chain: INPUT,
                   rules: ["[12:720] -p tcp -m tcp --dport 22 -j ACCEPT", "[3:180] -m statistic --mode random --probability 0.30000000000 -j DROP"]}
            unread:
              description:
                - One entry per ruleset that could not be read, with C(family) (V(ipv4), V(ipv6), an nftables family,
                  or null when nothing could be read), C(backend) (V(legacy), V(nft), V(nft-native) or null),
                  C(table) (nftables tables, else null), C(command) (or null), C(cause) and C(reason).
                - C(cause) is V(no_root) (no CAP_NET_ADMIN, or the command said permission denied),
                  V(missing_binary) (the C(*-save) or C(nft) command is not in C(PATH) while the kernel holds
                  tables of that backend) or V(unreadable) (the command failed or timed out, or
                  C(/proc/net/ip_tables_names) could not be read).
              type: list
              elements: dict
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
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.fileio import InputError, head


def _is_json(path: str) -> bool:
    return head(path, 4096).lstrip()[:1] in (b"{", b"[")


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(FACT_ARGS, src=dict(type="path"), src_family=dict(type="str", choices=["ipv4", "ipv6"], default="ipv4"),
                           rules=dict(type="str", choices=["all", "drops"], default="all"),
                           rules_format=dict(type="str", choices=["full", "compact"], default="full")),
        mutually_exclusive=[("netns", "container"), ("src", "netns"), ("src", "container")],
        supports_check_mode=True,
    )
    p = module.params
    kwargs = {}
    if p["src"]:
        try:
            key = "nft_src" if _is_json(p["src"]) else ("ip6tables_src" if p["src_family"] == "ipv6" else "iptables_src")
        except InputError as exc:
            module.fail_json(msg="cannot read src %s" % exc)
        kwargs[key] = p["src"]
    run(module, ["iptables"], Collector(proc_root=p["proc_root"], rules=p["rules"], rules_format=p["rules_format"], **kwargs))


if __name__ == "__main__":
    main()
