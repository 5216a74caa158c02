#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: random_drop
short_description: Remove the firewall rules that drop packets at random, or set one for a drill
version_added: 0.1.0
description:
  - With O(state=absent), removes every rule that drops packets at random and nothing else, in every table and
    chain (user chains included) - iptables and ip6tables rules of both backends where they hold tables
    (iptables-legacy and iptables-nft) with the C(statistic) match in C(random) or C(nth) mode and a C(DROP) or
    C(REJECT) target, and native nftables rules comparing C(numgen) or C(meta random) with a C(drop) or C(reject)
    verdict (or a C(numgen) verdict map sending some values to drop). O(family), O(backend), O(table) and O(chain)
    narrow the scope.
  - What counts as a random drop is what M(netdiag.packetloss.iptables_facts) reports as C(random_drop). Rules that
    choose at random where to jump (kube-proxy's C(-m statistic --mode random --probability 0.333 -j KUBE-SEP-...)),
    plain C(DROP) rules, policies and the counters of every other rule are left exactly as they were.
  - iptables changes are made per table in one C(iptables-restore --noflush --wait) run of generated C(-D CHAIN spec)
    lines (the spec exactly as C(iptables-save) printed it, bottom rule first), so each table is committed at once,
    and a table where a rule has gone in the meantime is refused as a whole. Native nftables rules are deleted by
    handle in one C(nft) transaction. No shell is involved.
  - iptables-legacy zeroes the policy counters of the built-in chains of every table it commits; for that backend the
    built-in chains are declared in the restore script with their policy and counters as read just before the
    commit (C(-c)), so policies and counters of every table are kept (the nft backend keeps them by itself).
  - A random drop that iptables-nft put into a table that also holds native nft rules (C(iptables-nft-save) calls
    it incompatible, C(nft -j) shows the statistic match as an opaque C(xt) expression) is removed by its nft handle.
    Such a table cannot be backed up in a form that restores it, so with O(backup=true) the module refuses it.
  - The rulesets are read with the reader M(netdiag.packetloss.iptables_facts) uses. If one in scope cannot be read
    (not root, an C(*-save) or C(nft) binary missing, a command failing), the module fails with the reason and
    changes nothing. A random-drop rule whose arguments hold a newline (a comment) cannot be written as a restore
    line; the module fails naming it and changes nothing.
  - After the change, each touched ruleset is read again; the module fails if a random-drop rule it removed is still
    there or a rule or policy counter went down, and warns if anything else differs from the ruleset read before
    minus the removed rules.
  - One remediation of a target at a time - this module and M(netdiag.packetloss.netem) take an exclusive lock per
    network namespace (in C(/run/netdiag-packetloss)) for the whole read, change and verification, waiting up to
    300 s. A run that waited for another and then finds nothing to do says so in C(msg) and reports no change.
  - With O(state=present), ensures exactly one drill rule of the form
    C([-p PROTOCOL [-m PROTOCOL --dport PORT]] -m statistic --mode random --probability P -j DROP) at the top of
    O(chain) (or C(... numgen random mod M < K counter drop) with O(backend=nft-native)), for fault-injection drills.
    Other rules of that exact form in the chain are replaced by it; any other rule is left alone.
author: netdiag.packetloss contributors (@netdiag)
options:
  state:
    description:
      - V(absent) removes the random-drop rules in scope; V(present) ensures the one drill rule.
    type: str
    required: true
    choices: [absent, present]
  family:
    description:
      - V(ipv4) (iptables and nftables C(ip) tables), V(ipv6) (ip6tables and nftables C(ip6) tables), or a native
        nftables family (V(inet), V(arp), V(bridge), V(netdev)); V(all) for every one.
      - Defaults to V(all) with O(state=absent) and to V(ipv4) with O(state=present), which takes V(ipv4), V(ipv6) or
        (with O(backend=nft-native)) V(inet).
    type: str
    choices: [all, ipv4, ipv6, inet, arp, bridge, netdev]
  backend:
    description:
      - V(legacy) (iptables-legacy), V(nft) (iptables-nft), V(nft-native) (native nftables tables), or V(all).
      - Defaults to V(all) with O(state=absent). With O(state=present) it defaults to V(auto), the backend of the plain
        C(iptables) (or C(ip6tables)) command on the target.
    type: str
    choices: [all, auto, legacy, nft, nft-native]
  table:
    description:
      - With O(state=absent), only this table (iptables table or nftables table name).
      - With O(state=present), the table of the drill rule; defaults to C(filter) for iptables and C(netdiag) for
        native nftables (created if missing).
    type: str
  chain:
    description:
      - With O(state=absent), only this chain.
      - With O(state=present) (required), the chain of the drill rule. An iptables chain must exist or be built in;
        a native nftables chain that does not exist is created as a base chain when named after its hook
        (C(input), C(output), C(forward), C(prerouting), C(postrouting), any case).
    type: str
  probability:
    description:
      - With O(state=present) (required), the share of packets the drill rule drops, in (0, 1].
      - iptables holds it in steps of 2^-31 (C(0.30) is saved as C(0.29999999981)); it is compared with that tolerance.
    type: float
  protocol:
    description: With O(state=present), drop only packets of this protocol.
    type: str
    choices: [tcp, udp, sctp, icmp, icmpv6]
  port:
    description: With O(state=present), drop only packets to this destination port (needs O(protocol) tcp, udp or sctp).
    type: int
  backup:
    description:
      - Before the first change, save each ruleset that is about to change to its own file (mode 0600) in
        O(backup_dir) - the C(iptables-save -c) output of that backend and family, or the nftables table as
        C(nft list table) prints it - and return the files with the command restoring each one.
      - Nothing is written in check mode or when nothing changes.
    type: bool
    default: false
  backup_dir:
    description:
      - Directory for O(backup) files, created with mode 0700 if missing. An existing directory must have mode 0700
        and belong to the user the module runs as; any other is refused (not chmod-ed) and nothing is changed.
      - Each file is written whole or not at all (temporary file, synced, then linked to its name); when one cannot
        be written (a full disk), none is kept and nothing is changed.
    type: path
    default: /var/backups/netdiag-packetloss
extends_documentation_fragment:
  - netdiag.packetloss.target
attributes:
  check_mode:
    support: full
    description: Reads the rulesets and reports what would be removed or added, and the diff; changes nothing.
  diff_mode:
    support: full
    description:
      - The affected tables before and after, as C(iptables-save) prints them (comments and counters left out), or
        as C(nft list table) prints them.
  idempotent:
    support: full
    description: A second run finds nothing to remove (or the drill rule already in place) and reports no change.
  platform:
    support: full
    platforms: posix
    description: Linux only.
notes:
  - Restore a backup with the command returned in RV(backup_files[].restore), for example
    C(iptables-nft-restore -c < FILE) (inside the target namespace, for example C(ip netns exec NAME ...) or
    C(nsenter --net=/proc/PID/ns/net ...)); for nftables C(nft -f FILE), which replaces the saved table in one
    transaction. An iptables restore replaces the tables in the file with their saved state, counters included.
  - The iptables and nft binaries of the target host are used, also for namespaces and containers, which need no
    tools of their own.
seealso:
  - module: netdiag.packetloss.iptables_facts
  - module: netdiag.packetloss.netem
"""

EXAMPLES = r"""
- name: Remove every random-drop rule inside the container nginx, keeping a backup
  netdiag.packetloss.random_drop:
    state: absent
    container: nginx
    backup: true

- name: Only IPv4 rules of the iptables-nft backend in the INPUT chain
  netdiag.packetloss.random_drop:
    state: absent
    family: ipv4
    backend: nft
    chain: INPUT

- name: Drill - drop 30% of the packets entering the namespace lab1
  netdiag.packetloss.random_drop:
    state: present
    netns: lab1
    chain: INPUT
    probability: 0.30

- name: Drill - native nftables, TCP to port 80 only
  netdiag.packetloss.random_drop:
    state: present
    backend: nft-native
    family: inet
    chain: input
    probability: 0.1
    protocol: tcp
    port: 80
"""

RETURN = r"""
removed:
  description:
    - The rules removed (in check mode, that would be removed), each with C(family), C(backend) (V(legacy), V(nft) or
      V(nft-native)), C(table), C(chain), C(position) (1-based, in the ruleset read before), C(spec), C(rule) (the
      C(-A CHAIN spec) line or the C(add rule) command), C(counters), C(statistic), and C(target) (iptables) or
      C(handle) and C(verdict) (nftables).
  type: list
  elements: dict
  returned: always
  sample:
    - family: ipv4
      backend: nft
      table: filter
      chain: INPUT
      position: 1
      spec: -m statistic --mode random --probability 0.29999999981 -j DROP
      rule: -A INPUT -m statistic --mode random --probability 0.29999999981 -j DROP
      target: DROP
      counters: {packets: 12, bytes: 720}
      statistic: {mode: random, probability: 0.29999999981, every: null, packet: null}
added:
  description: The drill rule added with O(state=present) (same keys as RV(removed)); empty otherwise.
  type: list
  elements: dict
  returned: always
steps:
  description: The changes made (or that would be made), one per C(*-restore) run or C(nft) transaction.
  type: list
  elements: str
  returned: always
backup_files:
  description: The backup files written, one per changed ruleset. Empty in check mode or without O(backup).
  type: list
  elements: dict
  returned: always
  contains:
    path:
      description: The file (mode 0600).
      type: str
    restore:
      description: The shell command (run as root on the target host) that puts the ruleset back from the file.
      type: str
      sample: ip netns exec lab1 iptables-nft-restore -c < /var/backups/netdiag-packetloss/random_drop-netns_lab1-20261127T010132.189289Z.ipv4-nft.rules
    family:
      description: The family of the ruleset (V(ipv4), V(ipv6), or the nftables family).
      type: str
    backend:
      description: V(legacy), V(nft) or V(nft-native).
      type: str
    table:
      description: The nftables table (native nftables only).
      type: str
      returned: for native nftables
    format:
      description: What the file holds (C(iptables-nft-save -c), C(nft list table), ...).
      type: str
backup_file:
  description: The path of the first backup file (the only one when a single ruleset changed).
  type: str
  returned: when a backup was written
scanned:
  description: The rulesets that were read, with C(family), C(backend), C(table) (nftables) and their C(rules) count.
  type: list
  elements: dict
  returned: always
target:
  description: Where the module worked (C(kind), C(name), C(label), C(netns_path), C(pid)).
  type: dict
  returned: always
msg:
  description:
    - What was (or would be) removed and added, or C(nothing to change ...); when this run waited for another
      remediation of the same target, it says so.
  type: str
  returned: always
state:
  description: The O(state) the module ensured.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import RemediationError, execute
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import batch as _batch


def main() -> None:
    module = AnsibleModule(**_batch.module_kwargs("random_drop"))
    try:
        build = _batch.builder("random_drop", module.params, module.check_mode)
    except RemediationError as exc:
        module.fail_json(msg=str(exc))
    execute(module, "random_drop", build, _batch.summary("random_drop"))


if __name__ == "__main__":
    main()
