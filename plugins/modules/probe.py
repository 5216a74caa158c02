#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: probe
short_description: Measure TCP packet loss and round-trip time to a host and port
version_added: 0.1.0
description:
  - Does the job of C(hping3 -c 10 -S -p 80 HOST) for any host and port, from wherever the task runs (the
    managed host, or the controller with C(delegate_to)).
  - Sends O(count) attempts, one every O(interval) seconds, each waiting at most O(timeout) seconds for its answer,
    and returns how many were answered, the loss in percent, the round-trip times and every attempt.
  - In O(mode=connect) each attempt is a full TCP handshake (unprivileged); an answer is a completed handshake
    (status C(open)) or a reset (status C(refused)).
  - In O(mode=syn) each attempt is one raw SYN from its own source port, as hping3 sends it; an answer is a SYN-ACK
    (C(open)) or a RST (C(refused)). The local kernel resets the SYN-ACK itself because no socket owns the
    connection, so no connection is ever established. Needs CAP_NET_RAW.
  - Attempts are sent on a fixed schedule whether or not earlier ones were answered, so a lossy target does not
    slow the probe down; it takes about O(count) x O(interval) + O(timeout) seconds.
  - Only the O(host) given is probed. The traffic is small (one handshake or one SYN per attempt).
author: netdiag.packetloss contributors (@netdiag)
options:
  host:
    description: The host name or address to probe.
    type: str
    required: true
  port:
    description: The TCP port to probe.
    type: int
    required: true
  mode:
    description:
      - V(connect) completes a TCP handshake per attempt (no privilege needed).
      - V(syn) sends a raw SYN per attempt and waits for the SYN-ACK or RST (CAP_NET_RAW, that is root).
    type: str
    choices: [connect, syn]
    default: connect
  count:
    description: Number of attempts (1 to 10000).
    type: int
    default: 10
  interval:
    description: Seconds between the starts of two attempts (0 to 60).
    type: float
    default: 0.2
  timeout:
    description:
      - Seconds each attempt waits for its answer (0.01 to 60).
      - In O(mode=connect), a timeout above one second lets the kernel retransmit a lost SYN (its initial
        retransmission timeout is one second), so the attempt measures the handshake with retries, not one packet.
      - In O(mode=syn), a timeout above one second also counts SYN-ACKs the target retransmits after losing the
        first one, as hping3 does (it waits for late replies), so the loss measured is lower.
    type: float
    default: 1.0
  family:
    description: Address family to resolve O(host) to; V(any) prefers IPv4.
    type: str
    choices: [any, ipv4, ipv6]
    default: any
attributes:
  check_mode:
    support: full
    description:
      - The probe only sends test traffic and changes nothing, so it runs unchanged in check mode (the
        C(diagnose) role relies on it to diagnose under C(--check)).
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  idempotent:
    support: full
    description: The probe never changes anything; its measurements differ from run to run.
  platform:
    support: full
    platforms: posix
    description: Linux; O(mode=syn) uses Linux raw sockets.
requirements:
  - Python >= 3.9 where the task runs.
  - CAP_NET_RAW (root) for O(mode=syn).
notes:
  - A C(refused) answer (RST) counts as answered; the packets got through, the port is closed.
  - RTT percentiles use the nearest-rank method over the answered attempts.
seealso:
  - module: netdiag.packetloss.packetloss_facts
"""

EXAMPLES = r"""
- name: Measure like hping3 -c 20 -S -p 80 (from the controller)
  netdiag.packetloss.probe:
    host: 172.17.0.2
    port: 80
    mode: syn
    count: 20
  delegate_to: localhost
  register: probe

- name: Fail when more than 1% of handshakes to the web server are lost
  netdiag.packetloss.probe:
    host: "{{ ansible_host | default(inventory_hostname) }}"
    port: 443
  register: web
  failed_when: web.loss_percent > 1
"""

RETURN = r"""
host:
  description: The host probed, as given.
  type: str
  returned: success
address:
  description: The address O(host) resolved to.
  type: str
  returned: success
  sample: 172.17.0.2
port:
  description: The port probed.
  type: int
  returned: success
mode:
  description: V(connect) or V(syn).
  type: str
  returned: success
family:
  description: V(ipv4) or V(ipv6).
  type: str
  returned: success
sent:
  description: Attempts made.
  type: int
  returned: success
  sample: 10
answered:
  description: Attempts answered by a SYN-ACK (or completed handshake) or by a RST.
  type: int
  returned: success
  sample: 5
lost:
  description: Attempts not answered within O(timeout) (or failed locally, for example no route).
  type: int
  returned: success
loss_percent:
  description: Lost attempts in percent of those sent.
  type: float
  returned: success
  sample: 50.0
open:
  description: Attempts answered by a SYN-ACK (the port is open).
  type: int
  returned: success
refused:
  description: Attempts answered by a RST (the port is closed).
  type: int
  returned: success
rtt_ms:
  description: Round-trip times of the answered attempts in milliseconds; every value is null when none was answered.
  type: dict
  returned: success
  contains:
    min:
      description: Smallest RTT.
      type: float
    avg:
      description: Mean RTT.
      type: float
    max:
      description: Largest RTT.
      type: float
    p50:
      description: Median RTT (nearest rank).
      type: float
    p95:
      description: 95th percentile RTT (nearest rank).
      type: float
duration:
  description: Seconds the probe took.
  type: float
  returned: success
attempts:
  description: Every attempt, in order.
  type: list
  elements: dict
  returned: success
  contains:
    seq:
      description: Attempt number, from 1.
      type: int
    status:
      description: V(open), V(refused), V(timeout), V(unreachable) (an ICMP error or no route) or V(error).
      type: str
    reply:
      description: V(syn-ack), V(rst), or null when unanswered.
      type: str
    rtt_ms:
      description: Round-trip time in milliseconds, null when unanswered.
      type: float
    error:
      description: The local error for V(unreachable) and V(error), else null.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.probe import DEFAULTS, FAMILIES, MODES, ProbeError, run


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", required=True),
            mode=dict(type="str", choices=list(MODES), default=DEFAULTS["mode"]),
            count=dict(type="int", default=DEFAULTS["count"]),
            interval=dict(type="float", default=DEFAULTS["interval"]),
            timeout=dict(type="float", default=DEFAULTS["timeout"]),
            family=dict(type="str", choices=list(FAMILIES), default=DEFAULTS["family"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = run(p["host"], p["port"], mode=p["mode"], count=p["count"], interval=p["interval"],
                     timeout=p["timeout"], family=p["family"])
    except ProbeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
