# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    """Options shared by every module that reads or changes one network namespace."""

    DOCUMENTATION = r"""
options:
  netns:
    description:
      - The network namespace to work in, by name (a file in C(/run/netns), as C(ip netns add) creates it)
        or by path (for example C(/proc/1234/ns/net)). A path must be a network namespace file; a FIFO, device,
        directory, plain file or namespace of another type is refused (it is opened without blocking and checked).
      - Mutually exclusive with O(container). Without either, the host's own namespace of the module process is used.
    type: str
  container:
    description:
      - A Docker container, by name or id, whose network namespace to work in.
      - Resolved on the target host with the Docker SDK for Python to the PID of the container's init process,
        so a container with no tools inside can be diagnosed or repaired from its host.
      - Mutually exclusive with O(netns).
    type: str
requirements:
  - Linux, Python >= 3.9 on the target.
  - root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) to enter another network namespace.
  - The Docker SDK for Python (C(docker)) on the target when O(container) is used.
notes:
  - Entering a namespace uses C(setns(2)) in the module process; no shell and no C(nsenter) are involved.
"""

    FACTS = r"""
options:
  proc_root:
    description:
      - A directory that stands in for C(/proc) (as node_exporter's C(--path.procfs) does), to read a copied
        C(/proc) tree, for example from a support bundle, instead of the live system.
      - Files are read relative to it (C(net/snmp), C(net/netstat), C(net/snmp6), C(net/softnet_stat), C(net/dev),
        C(net/stat/nf_conntrack), C(sys/net/netfilter/nf_conntrack_count), ...).
      - Only regular files are read, each of at most 8 MiB; a FIFO, device (a symlink to C(/dev/zero)), directory or
        larger file is not read. Each file is a source of its own, so a missing or broken one is reported in the
        layer's C(sources) with its path and reason and the rest of the layer is still returned.
      - When set, O(netns) and O(container) may not be used.
    type: path
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs unchanged in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  facts:
    support: full
    description: The result goes to C(ansible_facts.packetloss).
  idempotent:
    support: full
    description: Reading twice changes nothing; counters may have moved between the two reads.
notes:
  - Ansible merges facts one level deep only, so each fact module sets the whole C(ansible_facts.packetloss) dictionary.
    Use M(netdiag.packetloss.packetloss_facts) to gather several layers into it at once.
  - Every result carries C(collected_at) (UTC, ISO 8601) and C(elapsed) (seconds the collection took).
"""

    RULES = r"""
options:
  rules:
    description:
      - Which rules to list in C(iptables.rules). C(all) lists every rule. C(drops) lists only the rules that can
        drop (DROP or REJECT targets and drop/reject verdicts, and every rule with a statistic, numgen or random match,
        such as kube-proxy's load balancing), which costs far less on rulesets of many thousand rules;
        C(iptables.rule_count) counts every rule either way, and positions are the true ones.
    type: str
    choices: [all, drops]
    default: all
  rules_format:
    description:
      - The form of the rules listed. C(full) lists each rule in C(iptables.rules) as a dictionary with every key
        (matches, counters, statistic, ...).
      - C(compact) is for rulesets of many thousand rules (kube-proxy nodes). C(iptables.rules) then holds only the
        rules that can drop, as full dictionaries (what O(rules=drops) lists, all the analysis and reports use), and
        C(iptables.rule_lines) holds every rule that O(rules) selects as one line of text, C([packets:bytes] spec)
        (the spec as C(iptables-save) prints it after C(-A CHAIN), or nft's rule text), in lists per family,
        backend, table and chain; a rule's position is its place in its list. The result is several times smaller
        and faster to return than 10,000 dictionaries.
    type: str
    choices: [full, compact]
    default: full
"""
