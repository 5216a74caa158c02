#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: netem
short_description: Remove netem qdiscs (network emulation - loss, delay, duplication, corruption), or set one
version_added: 0.1.0
description:
  - With O(state=absent), removes netem qdiscs - root or below a class - on O(interface) or on every interface, or
    only those chosen by O(parent) and O(match) (bounds on their loss, delay, ...). A root netem gives way to the
    interface's default qdisc, as C(tc qdisc del dev IF root) does; what was below a removed netem goes with it and
    is listed. Other qdiscs are not touched.
  - With O(state=present), makes the root qdisc of O(interface) a netem with exactly the given options (what is not
    given is off, C(limit) is 1000 as with C(tc)). When the root is already such a netem nothing happens; otherwise
    one rtnetlink request builds the new netem and grafts it in place of the old root qdisc.
  - Works over rtnetlink (no C(tc) binary and no Python library needed) - the qdiscs are read with one dump on a
    netlink socket and the netem options decoded from the kernel's raw attribute; changes are sent as single requests
    whose netem options are encoded here.
  - On a kernel without netem (C(CONFIG_NET_SCH_NETEM) not set) O(state=present) fails with
    C(the kernel has no sch_netem ...) and changes nothing.
author: netdiag.packetloss contributors (@netdiag)
options:
  state:
    description: V(absent) removes the netem qdiscs in scope; V(present) sets the root netem of O(interface).
    type: str
    required: true
    choices: [absent, present]
  interface:
    description:
      - The network interface (in the target namespace). Required with O(state=present); with O(state=absent),
        without it every interface is looked at.
    type: str
  parent:
    description:
      - With O(state=absent), V(root) removes only root netem qdiscs, V(child) only those below a class, V(any) both.
    type: str
    choices: [any, root, child]
    default: any
  match:
    description:
      - With O(state=absent), remove only the netem qdiscs whose options fall within all these bounds; the others
        are left alone.
      - Keys C(loss), C(duplicate), C(corrupt), C(reorder) (percent), C(delay), C(jitter) (milliseconds, or a time
        such as C(100ms)), C(rate) (bit/s, or a rate such as C(1mbit)) and C(limit) (packets). Each value is either
        a number (that exact value) or a dictionary with C(min) and/or C(max) (inclusive). An option that is off
        counts as 0.
      - 'Example: C({loss: {min: 1}}) removes netem qdiscs that lose at least 1% and keeps pure delay emulation.'
    type: dict
  loss:
    description: Percentage of packets to drop at random (0-100).
    type: float
  loss_correlation:
    description: Correlation of the loss with the previous packet's, in percent.
    type: float
  delay:
    description: Delay added to each packet, in milliseconds (a number) or as a time with a unit (C(100ms), C(1.5s), C(200us)).
    type: raw
  jitter:
    description: Random variation of the delay (needs O(delay)), in milliseconds or as a time with a unit.
    type: raw
  delay_correlation:
    description: Correlation of the jitter with the previous packet's, in percent (needs O(jitter)).
    type: float
  duplicate:
    description: Percentage of packets to duplicate.
    type: float
  duplicate_correlation:
    description: Correlation of duplication, in percent.
    type: float
  corrupt:
    description: Percentage of packets to corrupt (one bit flipped at a random offset).
    type: float
  corrupt_correlation:
    description: Correlation of corruption, in percent.
    type: float
  reorder:
    description:
      - Percentage of packets sent at once while the others are delayed (needs O(delay)); as with C(tc), O(gap)
        defaults to 1.
    type: float
  reorder_correlation:
    description: Correlation of reordering, in percent.
    type: float
  gap:
    description: With O(reorder), reorder only every O(gap)-th packet.
    type: int
  rate:
    description: Rate limit, in bit/s (a number) or as C(tc) writes rates (C(1mbit), C(100kbit), C(10gbit), C(125kbps)).
    type: raw
  limit:
    description: Queue length in packets. C(tc) uses 1000 when it is not given, and so does this module.
    type: int
  ecn:
    description: Mark packets with ECN instead of dropping them (needs O(loss)).
    type: bool
    default: false
  force:
    description:
      - With O(state=present), replace a root qdisc that someone set up (other than netem and the kernel's default),
        and everything below it. Without it the module refuses.
    type: bool
    default: false
  backup:
    description:
      - Before the first change, write the qdiscs as they were (as JSON) and the C(tc) commands that set the
        changed netem qdiscs again to a shell script (mode 0600) in O(backup_dir), and return it.
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
    description:
      - Reads the qdiscs and reports what would be removed or set, and the diff; changes nothing. With
        O(state=present) it also fails when the kernel visibly has no netem (its configuration says so).
  diff_mode:
    support: full
    description: The qdiscs of the affected interfaces before and after, in the form C(tc qdisc show) prints.
  idempotent:
    support: full
    description: The options the kernel reports are compared with the wanted ones; a second run changes nothing.
  platform:
    support: full
    platforms: posix
    description: Linux only.
notes:
  - One remediation of a target at a time - M(netdiag.packetloss.random_drop) and this module take an exclusive
    lock per network namespace (in C(/run/netdiag-packetloss)) for their whole read, change and verification,
    waiting up to 300 s. A run that waited and then finds nothing to do says so in C(msg) and reports no change.
  - Restore a backup by running it in the target namespace, with the command returned in RV(backup_files[].restore)
    (for example C(ip netns exec NAME sh FILE)); it needs the C(tc) command.
  - Delay distribution tables (C(distribution normal)) are not set by this module, and a backup cannot write them
    back (the restored netem has no distribution).
seealso:
  - module: netdiag.packetloss.tc_facts
  - module: netdiag.packetloss.random_drop
"""

EXAMPLES = r"""
- name: Remove every netem qdisc inside the container nginx (the seed's tc qdisc del dev eth0 root netem loss 30%)
  netdiag.packetloss.netem:
    state: absent
    container: nginx
    backup: true

- name: Remove only netem qdiscs on eth0 that lose packets, keep delay-only emulation
  netdiag.packetloss.netem:
    state: absent
    interface: eth0
    match:
      loss: {min: 0.001}

- name: Drill - 30% loss and 100ms +- 10ms delay on eth0 of the namespace lab1
  netdiag.packetloss.netem:
    state: present
    netns: lab1
    interface: eth0
    loss: 30
    delay: 100ms
    jitter: 10ms
"""

RETURN = r"""
removed:
  description:
    - The qdiscs removed (in check mode, that would be removed), each with C(interface), C(kind), C(handle),
      C(parent), C(root), C(options) (decoded netem options), C(stats), C(line) (as C(tc qdisc show) prints it) and,
      for a qdisc that goes because of another one, C(reason).
  type: list
  elements: dict
  returned: always
added:
  description: With O(state=present), the netem set (same keys as RV(removed); after the change, as the kernel reports it).
  type: list
  elements: dict
  returned: always
steps:
  description: The rtnetlink requests made (or that would be made), in C(tc) words.
  type: list
  elements: str
  returned: always
backup_files:
  description: The backup file written (one per run). Empty in check mode or without O(backup).
  type: list
  elements: dict
  returned: always
  contains:
    path:
      description: The file (mode 0600), a shell script of C(tc) commands with the qdiscs as they were in a JSON comment.
      type: str
    restore:
      description: The shell command (run as root on the target host) that sets the netem qdiscs again.
      type: str
      sample: ip netns exec lab1 sh /var/backups/netdiag-packetloss/netem-netns_lab1-20261127T010132.189289Z.tc.sh
    format:
      description: C(tc commands).
      type: str
backup_file:
  description: The path of the backup file.
  type: str
  returned: when a backup was written
scanned:
  description: The qdiscs that were looked at (C(interface), C(kind), C(handle), C(parent)).
  type: list
  elements: dict
  returned: always
target:
  description: Where the module worked (C(kind), C(name), C(label), C(netns_path), C(pid)).
  type: dict
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
    module = AnsibleModule(**_batch.module_kwargs("netem"))
    try:
        build = _batch.builder("netem", module.params, module.check_mode)
    except RemediationError as exc:
        module.fail_json(msg=str(exc))
    execute(module, "netem", build, _batch.summary("netem"))


if __name__ == "__main__":
    main()
