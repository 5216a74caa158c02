#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_facts
short_description: Connection tracking table size, limit and per-CPU statistics
version_added: 0.1.0
description:
  - C(nf_conntrack_count), C(nf_conntrack_max), C(nf_conntrack_buckets), the usage in percent, and
    C(/proc/net/stat/nf_conntrack) per CPU and summed (found, invalid, insert_failed, drop, early_drop, search_restart, ...).
  - A kernel or namespace without conntrack is reported as C(loaded=false), not as an error.
author: netdiag.packetloss contributors (@netdiag)
options: {}
extends_documentation_fragment:
  - netdiag.packetloss.target
  - netdiag.packetloss.target.facts
"""

EXAMPLES = r"""
- name: Conntrack usage of the host
  netdiag.packetloss.conntrack_facts:
- ansible.builtin.debug:
    msg: "{{ ansible_facts.packetloss.conntrack.usage_percent }}% of the table used"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    packetloss:
      description: C(conntrack) holds this layer; C(target), C(collected_at), C(elapsed) say where and when.
      type: dict
      returned: always
      contains:
        conntrack:
          description:
            - C(loaded), C(count), C(max), C(buckets), C(usage_percent), C(stat) (C(per_cpu) and C(total)).
            - The sources C(count), C(max), C(buckets) (C(sys/net/netfilter/nf_conntrack_*)) and C(stat)
              (C(net/stat/nf_conntrack)) are read each on its own; one not read is null, and C(usage_percent) is null
              unless C(count) and C(max) were both read.
            - C(sources) maps each source of the layer to C(path) (the file, or C(netlink)), C(read) (bool) and
              C(reason) (why it was not read, else null); a source not read leaves its key null. The layer has
              C(available=false) only when no source could be read (C(sources) is then returned too).
          type: dict
          returned: always
          sample: {available: true, loaded: true, count: 12, max: 262144, buckets: 65536, usage_percent: 0.0}
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

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.facts_module import FACT_ARGS, run


def main() -> None:
    module = AnsibleModule(argument_spec=dict(FACT_ARGS), mutually_exclusive=[("netns", "container")], supports_check_mode=True)
    run(module, ["conntrack"])


if __name__ == "__main__":
    main()
