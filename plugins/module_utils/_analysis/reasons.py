# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drop-reason findings: the kernel's drop events (the drop_reasons fact layer) classified by reason and location,
the loss named by its family's finding, the noise kept apart, and the events no other finding explains.

Part of the analyzer (analyze.py: its thresholds, context and entry points), which loads it only where drop events were recorded.
Pure functions, no I/O.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import (
    _Ctx, _fmt_rate, _get, _int, _rate, _secs, grade)


# ------------------------------------------------------------------------------------------------
# drop reasons (the drop_reasons fact layer; docs/drop-reasons.md renders these tables)
# ------------------------------------------------------------------------------------------------

# Drop events that are not network loss, kept out of the loss findings but counted (finding drops.noise, info):
# (reason, location, why). None matches any reason or location; the first matching row wins.
DROP_REASON_NOISE: Tuple[Tuple[Optional[str], Optional[str], str], ...] = (
    ("NOT_SPECIFIED", "ip6_mc_input", "IPv6 multicast (MLD reports, router and neighbour solicitations) for groups "
     "this host has not joined: every new link gets some"),
    ("IP_INNOROUTES", "ip6_pkt_discard", "IPv6 autoconfiguration traffic before its routes exist"),
    ("QUEUE_PURGE", None, "queues purged when a socket closes: data its application did not read"),
    (None, "skb_queue_purge_reason", "queues purged when a socket closes: data its application did not read"),
    (None, "tcp_disconnect", "a TCP socket's queues freed when it was closed or reset"),
    (None, "sk_stream_kill_queues", "a TCP socket's queues freed when it was destroyed"),
    ("NOT_SPECIFIED", "udp_destruct_common", "datagrams still queued when a UDP socket closed, unread by its application"),
    ("SOCKET_CLOSE", None, "packets freed when their socket closed"),
    ("TCP_ABORT_ON_DATA", None, "an application closed a TCP connection with data it had not read"),
    ("NO_SOCKET", "ping_rcv", "echo replies taken by a raw-socket ping: the ICMP-socket lookup after it finds none"),
    ("NOT_SPECIFIED", "tcp_v4_rcv", "segments of a connection being torn down (seen at every normal close)"),
    ("NOT_SPECIFIED", "tcp_v6_rcv", "segments of a connection being torn down (seen at every normal close)"),
    ("NOT_SPECIFIED", "virtio_transport_recv_pkt", "the vsock host-guest channel, not network traffic"),
    ("NOT_SPECIFIED", "__rtnl_unlock", "frees while the network configuration changes"),
    ("NOT_SPECIFIED", "netif_napi_add_weight_locked", "frees while the network configuration changes"),
    ("IPV6DISABLED", None, "IPv6 frames reaching a device with IPv6 disabled: no IPv6 service there to lose them"),
    ("UNHANDLED_PROTO", None, "frames of a protocol no handler takes (LLDP, STP and the like), not traffic this host serves"),
    ("OTHERHOST", None, "frames for another host's MAC address, seen in promiscuous mode (a packet capture)"),
    ("UNIX_DISCONNECT", None, "unix-domain sockets, not network traffic"),
    ("UNIX_SKIP_OOB", None, "unix-domain sockets, not network traffic"),
    # kernels before the QUEUE_PURGE and SOCKET_CLOSE reasons (Debian's 6.1, seen by the VM drills): same events
    (None, "skb_queue_purge", "queues purged when a socket closes: data its application did not read"),
    ("NOT_SPECIFIED", "skb_release_data", "the fragment list of a packet freed with it: older kernels report each "
     "fragment as dropped whatever the packet's fate (its own drop, if any, has its own reason)"),
    ("NOT_SPECIFIED", "unix_dgram_sendmsg", "unix-domain sockets, not network traffic"),
)

# The finding each drop reason (or, for NOT_SPECIFIED and kernels without reasons, each location) is real loss of,
# and the counter findings that corroborate it: {finding id: (reasons, locations, corroborating ids, what, advice)}.
DROP_REASON_FINDINGS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[str, ...], str, str]] = {
    "netfilter.drop_reason": (
        ("NETFILTER_DROP", "BPF_CGROUP_EGRESS", "SECURITY_HOOK", "XFRM_POLICY"),
        ("nf_hook_slow", "nft_do_chain", "ipt_do_table", "ip6t_do_table"),
        ("netfilter.random_drop", "netfilter.drop_hits", "conntrack.drop", "conntrack.insert_failed", "conntrack.limit"),
        "a packet filter dropped or rejected packets (netfilter rules or policies, conntrack when its table is full "
        "at nf_hook_slow, a cgroup BPF program, an LSM, an IPsec policy)",
        "Find the rule or policy (iptables -nvL / nft list ruleset counters; conntrack -S for a full table) and accept "
        "the traffic if it should pass."),
    "qdisc.drop_reason": (
        ("QDISC_DROP", "QDISC_OVERLIMIT", "QDISC_CONGESTED", "CAKE_FLOOD", "FQ_BAND_LIMIT", "FQ_HORIZON_LIMIT",
         "FQ_FLOW_LIMIT", "DUALPI2_STEP_DROP", "TC_EGRESS", "TC_INGRESS", "TC_COOKIE_ERROR", "TC_CHAIN_NOTFOUND",
         "TC_RECLASSIFY_LOOP"),
        ("__dev_xmit_skb", "tcf_classify"),
        ("qdisc.netem", "qdisc.drops"),
        "a queueing discipline (full queue, shaping, netem) or a tc filter action dropped packets",
        "Look at tc -s qdisc and tc -s filter on the interfaces; raise the queue limit, fix the shaping or remove "
        "the dropping filter."),
    "softnet.drop_reason": (
        ("CPU_BACKLOG",), ("enqueue_to_backlog",), ("softnet.dropped", "nic.rx_dropped", "nic.tx_dropped"),
        "a CPU's input backlog (net.core.netdev_max_backlog, RPS flow limit) was full",
        "Raise net.core.netdev_max_backlog, spread the load (RPS/RSS) or find the CPU that is saturated."),
    "nic.drop_reason": (
        ("XDP", "DEV_HDR", "DEV_READY", "FULL_RING", "NOMEM", "HDR_TRUNC", "SKB_CSUM", "SKB_GSO_SEG", "SKB_UCOPY_FAULT",
         "TAP_FILTER", "TAP_TXFILTER", "MAC_INVALID_SOURCE", "LOCAL_MAC", "NO_TX_TARGET", "PFMEMALLOC",
         "RECURSION_LIMIT", "VXLAN_INVALID_HDR", "VXLAN_VNI_NOT_FOUND", "VXLAN_ENTRY_EXISTS", "IP_TUNNEL_ECN",
         "TUNNEL_TXINFO", "ARP_PVLAN_DISABLE", "MAC_IEEE_MAC_CONTROL", "BRIDGE_INGRESS_STP_STATE", "UNICAST_IN_L2_MULTICAST",
         "CAN_RX_INVALID_FRAME", "CANFD_RX_INVALID_FRAME", "CANXL_RX_INVALID_FRAME", "PSP_INPUT", "PSP_OUTPUT"),
        ("do_xdp_generic", "veth_xdp_rcv_skb", "__dev_forward_skb2", "veth_xmit", "br_handle_frame"),
        ("nic.rx_dropped", "nic.tx_dropped", "nic.driver_drops", "nic.rx_errors", "nic.tx_errors", "nic.rx_fifo",
         "nic.rx_missed"),
        "a device, driver, XDP program, tunnel or bridge port dropped packets",
        "Look at ip -s -s link, ethtool -S and the XDP/tc programs attached (ip link, bpftool net) on the interfaces."),
    "ip.drop_reason": (
        ("IP_CSUM", "IP_INHDR", "IP_RPFILTER", "IP_NOPROTO", "IP_OUTNOROUTES", "IP_INADDRERRORS", "IP_INNOROUTES",
         "IP_LOCAL_SOURCE", "IP_INVALID_SOURCE", "IP_LOCALNET", "IP_INVALID_DEST", "PKT_TOO_BIG", "PKT_TOO_SMALL",
         "DUP_FRAG", "FRAG_REASM_TIMEOUT", "FRAG_TOO_FAR", "INVALID_PROTO", "ICMP_CSUM", "IPV6_BAD_EXTHDR",
         "IPV6_NDISC_FRAG", "IPV6_NDISC_HOP_LIMIT", "IPV6_NDISC_BAD_CODE", "IPV6_NDISC_BAD_OPTIONS",
         "IPV6_NDISC_NS_OTHERHOST", "NEIGH_CREATEFAIL", "NEIGH_FAILED", "NEIGH_QUEUEFULL", "NEIGH_DEAD", "NEIGH_HH_FILLFAIL"),
        ("ip_rcv_finish_core", "ip_error", "ip_forward", "ip_expire", "__neigh_event_send", "neigh_invalidate"),
        ("ip.in_no_routes", "ip.out_no_routes", "ip.frag_fails", "ip.reasm_fails", "ip.rp_filter", "ip.header_errors",
         "ip.icmp_errors"),
        "the IP layer dropped packets (bad header or checksum, no route, reverse-path filter, martian address, "
        "fragment too big or not reassembled, neighbour not resolved)",
        "Check routes (ip route get), rp_filter, the MTU along the path and the neighbour table (ip neigh)."),
    "tcp.drop_reason": (
        ("TCP_CSUM", "TCP_AUTH_HDR", "TCP_MD5NOTFOUND", "TCP_MD5UNEXPECTED", "TCP_MD5FAILURE", "TCP_AONOTFOUND",
         "TCP_AOUNEXPECTED", "TCP_AOKEYNOTFOUND", "TCP_AOFAILURE", "TCP_FLAGS", "TCP_ZEROWINDOW", "TCP_OLD_DATA",
         "TCP_OVERWINDOW", "TCP_OFOMERGE", "TCP_RFC7323_PAWS", "TCP_RFC7323_PAWS_ACK", "TCP_RFC7323_TW_PAWS",
         "TCP_RFC7323_TSECR", "TCP_LISTEN_OVERFLOW", "TCP_OLD_SEQUENCE", "TCP_INVALID_SEQUENCE",
         "TCP_INVALID_END_SEQUENCE", "TCP_INVALID_ACK_SEQUENCE", "TCP_RESET", "TCP_INVALID_SYN", "TCP_CLOSE",
         "TCP_FASTOPEN", "TCP_OLD_ACK", "TCP_TOO_OLD_ACK", "TCP_ACK_UNSENT_DATA", "TCP_OFO_QUEUE_PRUNE", "TCP_OFO_DROP",
         "TCP_MINTTL"),
        (),
        ("tcp.listen_overflow", "socket.tcp_rcvq_drop", "socket.tcp_pruned", "socket.tcp_backlog_drop", "tcp.in_errors",
         "tcp.in_drops", "tcp.retrans"),
        "TCP dropped segments on the receive path (checksum, window or sequence checks, PAWS, out-of-order queue "
        "pruned, listen queue overflow, authentication)",
        "Look at netstat -s (TcpExt) for the matching counters and at the receivers' buffers (ss -tmi)."),
    "udp.drop_reason": (
        ("UDP_CSUM",), (), ("udp.in_errors",),
        "UDP datagrams with a bad checksum were dropped",
        "Look for corruption on the path (NIC offloads, a faulty link) with ethtool -S and ip -s link."),
    "socket.drop_reason": (
        ("SOCKET_RCVBUFF", "SOCKET_BACKLOG", "PROTO_MEM", "SOCKET_FILTER", "PACKET_SOCK_ERROR"),
        ("udp_queue_rcv_one_skb",),
        ("udp.rcvbuf_errors", "udp.in_errors", "socket.tcp_backlog_drop", "socket.tcp_rcvq_drop", "socket.tcp_pruned"),
        "sockets dropped packets: receive buffer or backlog full, protocol memory exhausted, a socket filter",
        "Find the socket (ss -uamp / ss -tmp: the d counter of skmem), make its application read faster or raise its "
        "buffer (SO_RCVBUF, net.core.rmem_max)."),
    "socket.no_listener": (
        ("NO_SOCKET",), (), ("udp.in_errors",),
        "packets reached a port no socket listens on (a closed port: the sender gets a reset or port unreachable)",
        "Check that the service is running and listening on that port (ss -lntup), or that clients use the right one."),
}
# (reason, location) pairs that a reason alone would put elsewhere: {pair: (finding id, what it means here)}
DROP_REASON_AT: Dict[Tuple[str, str], Tuple[str, str]] = {
    ("NO_SOCKET", "cookie_v4_check"): ("tcp.drop_reason", "a full accept queue: the handshake's final ACK found no "
                                       "socket (syncookies), counted as ListenOverflows"),
    ("NO_SOCKET", "cookie_v6_check"): ("tcp.drop_reason", "a full accept queue: the handshake's final ACK found no "
                                       "socket (syncookies), counted as ListenOverflows"),
}


def drop_reason_class(reason: Optional[str], location: Optional[str]) -> Tuple[str, Optional[str], str]:
    """Where one (reason, location) of the drop_reasons layer goes: ("noise", None, why), ("finding", id, what) or
    ("unexplained", None, why). ``reason`` None: a kernel without reasons (location only)."""
    loc = location if location not in (None, "?") else None
    for r, l, why in DROP_REASON_NOISE:
        if reason is None:  # a kernel without reasons: a row's location alone decides
            if l is not None and l == loc:
                return "noise", None, why
        elif (r is None or r == reason) and (l is None or l == loc):
            return "noise", None, why
    if reason is not None and loc is not None and (reason, loc) in DROP_REASON_AT:
        fid, what = DROP_REASON_AT[(reason, loc)]
        return "finding", fid, what
    if reason is not None and reason != "NOT_SPECIFIED":
        for fid, (reasons, _locs, _corr, what, _advice) in DROP_REASON_FINDINGS.items():
            if reason in reasons:
                return "finding", fid, what
    if loc is not None:
        for fid, (_reasons, locs, _corr, what, _advice) in DROP_REASON_FINDINGS.items():
            if loc in locs:
                return "finding", fid, what
    if reason is None:
        return "unexplained", None, "a kernel without drop reasons, at a location no finding names"
    if reason == "NOT_SPECIFIED":
        return "unexplained", None, "the kernel gave no reason, at a location no finding names"
    return "unexplained", None, "a drop reason no finding names"


def _where(rows: List[Dict[str, Any]], limit: int = 3) -> str:
    parts = ["%s x %d at %s" % (r.get("reason") or "(no reason)", r["count"], r.get("location") or "?") for r in rows[:limit]]
    return ", ".join(parts) + (" and %d more" % (len(rows) - limit) if len(rows) > limit else "")


# NO_SOCKET where a SYN-ACK answering a raw-socket SYN arrives: the syn probe (what hping3 -S does) sends its SYNs from
# a raw socket, so the prober's kernel finds no socket for the answers and resets them
PROBE_SYN_ACK_AT = (("NO_SOCKET", "tcp_v4_rcv"), ("NO_SOCKET", "tcp_v6_rcv"))
PROBE_SYN_ACK_WHY = ("SYN-ACKs answering this run's own syn probes: sent from a raw socket, the prober's kernel has no "
                     "socket for the answers (at most SYN_ACKS_PER_SYN per probe SYN)")


def _own_probe_answers(events: List[Dict[str, Any]], answers: int) -> List[Dict[str, Any]]:
    """Take up to ``answers`` NO_SOCKET events at tcp_v4_rcv/tcp_v6_rcv out of ``events`` as the SYN-ACKs this run's own
    syn probes drew: returns the noise rows taken; ``events`` rows are reduced in place."""
    taken = []
    for e in events:
        if answers <= 0:
            break
        if (e["reason"], e["location"]) in PROBE_SYN_ACK_AT:
            n = min(answers, e["count"])
            e["count"] -= n
            answers -= n
            taken.append({"reason": e["reason"], "location": e["location"], "count": n, "why": PROBE_SYN_ACK_WHY})
    return taken


def check_drop_reasons(layer: Optional[Dict[str, Any]], counter_findings: List[Dict[str, Any]],
                       th: Dict[str, Dict[str, Any]], label: str, target: Dict[str, Any],
                       probe_answers: int = 0) -> List[Dict[str, Any]]:
    """Findings from one host's drop_reasons layer (its second snapshot), next to the counter findings of all its
    targets: a finding per reason of real loss (DROP_REASON_FINDINGS), graded like counters over the recording's
    duration and corroborated by the counter findings of its family; noise (DROP_REASON_NOISE) in one info finding
    drops.noise; what nothing explains, and events the recording lost, in drops.unexplained.

    The tracepoint has no namespace: a finding is the host's (``label``), unless every corroborating counter finding
    of its family is on one and the same target, to which it is then attributed (docs/drop-reasons.md).
    """
    if not isinstance(layer, dict) or not layer.get("available") or not isinstance(layer.get("events"), list):
        return []
    seconds = layer.get("duration") if isinstance(layer.get("duration"), (int, float)) and layer["duration"] > 0 else None
    c = _Ctx({}, None, seconds, th, label)
    c.target = target
    grouped: Dict[Tuple[str, Optional[str]], List[Dict[str, Any]]] = {}
    whats: Dict[Tuple[str, Optional[str]], str] = {}
    rows_in = [{"reason": e.get("reason"), "location": e.get("location"), "count": int(e["count"])} for e in layer["events"]
               if isinstance(e, dict) and isinstance(_int(e.get("count")), int) and e["count"] > 0]
    noise: List[Dict[str, Any]] = _own_probe_answers(rows_in, probe_answers)
    for row in rows_in:
        if row["count"] <= 0:
            continue
        kind, fid, why = drop_reason_class(row["reason"], row["location"])
        if kind == "noise":
            noise.append(dict(row, why=why))
            continue
        key = (fid or "drops.unexplained", row["reason"])
        grouped.setdefault(key, []).append(row)
        whats[key] = why
    lost = _int(layer.get("lost")) or 0
    if lost > 0:
        key = ("drops.unexplained", "(lost)")
        grouped.setdefault(key, []).append({"reason": None, "location": None, "count": lost})
        whats[key] = "drop events the recording could not keep (%s)" % (layer.get("lost_source") or "lost")
    out: List[Dict[str, Any]] = []
    for (fid, reason), rows in sorted(grouped.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        rows.sort(key=lambda r: (-r["count"], str(r["location"])))
        delta = sum(r["count"] for r in rows)
        rate = _rate(delta, seconds)
        severity = grade(th[fid], delta, rate)
        if severity is None:
            continue
        corr_ids = DROP_REASON_FINDINGS[fid][2] if fid in DROP_REASON_FINDINGS else ()
        corr = [f for f in counter_findings if f["id"] in corr_ids]
        on = sorted(set(f["target"] for f in corr))
        where, scope = label, "host"
        if len(on) == 1:
            where, scope = on[0], "target"
        subject = "drop reason %s" % (reason or "(none)") if reason != "(lost)" else "drop events lost"
        attribution = ("attributed to %s: the counter findings of this family moved there and on no other target"
                       % where if scope == "target" else
                       "host-wide: the tracepoint carries no namespace%s" % (
                           " and the corroborating counters moved on %s" % ", ".join(on) if on else ""))
        corr_txt = "; corroborated by %s" % ", ".join("%s on %s (%s)" % (f["id"], f["target"], f["summary"]) for f in corr[:3]) \
            if corr else ""
        summary = "%s in %s%s%s" % (_where(rows), _secs(seconds), _fmt_rate(rate), corr_txt) if reason != "(lost)" else \
            "%d drop events not read: %s" % (delta, whats[(fid, reason)])
        explanation = whats[(fid, reason)]
        if fid in DROP_REASON_FINDINGS:
            explanation = "The kernel's drop reason says %s: %s." % (reason or "(none, location only)", explanation)
            advice = DROP_REASON_FINDINGS[fid][4]
        elif reason == "(lost)":
            advice = ("Record with hist triggers (CONFIG_HIST_TRIGGERS) or a shorter interval; the drops themselves are "
                      "real and unexplained.")
        else:
            advice = ("Look up the reason in the kernel's include/net/dropreason-core.h and the location's source; "
                      "report it so the collection can name it.")
        evidence = {"drop_reasons": rows, "delta": delta, "rate": rate, "scope": scope, "attribution": attribution,
                    "method": layer.get("method"),
                    "corroborated_by": [{"id": f["id"], "target": f["target"], "subject": f["subject"],
                                         "severity": f["severity"], "delta": _get(f, "evidence", "delta")} for f in corr]}
        c.label = where
        c.add(fid, severity, subject, summary, evidence, explanation, advice)
        if reason != "(lost)" and fid in DROP_REASON_FINDINGS:
            ref = {"id": fid, "target": where, "subject": subject, "severity": severity, "delta": delta}
            for f in corr:  # the other way round: the counter finding names the kernel's reason next to its counter
                f["evidence"].setdefault("corroborated_by", []).append(ref)
                f["summary"] += "; the kernel says %s" % _where(rows, 1)
    if noise:
        noise.sort(key=lambda r: (-r["count"], str(r["reason"]), str(r["location"])))
        total = sum(r["count"] for r in noise)
        c.label = label
        severity = grade(th["drops.noise"], total, _rate(total, seconds))
        c.add("drops.noise", severity, "drop events that are not loss",
              "%d drop events that are not network loss: %s" % (total, _where(noise)),
              {"drop_reasons": noise, "delta": total, "rate": _rate(total, seconds), "scope": "host"},
              "These kfree_skb events are part of normal operation (DROP_REASON_NOISE in docs/drop-reasons.md says "
              "why for each): they are counted, not reported as loss.",
              "Nothing to do.", kind="noise")
    out.extend(c.findings)
    return out


def drop_reasons_markdown() -> str:
    """DROP_REASON_NOISE, DROP_REASON_AT and DROP_REASON_FINDINGS as docs/drop-reasons.md shows them (a unit test
    keeps the page equal to the code)."""
    lines = ["| finding id | drop reasons | locations (NOT_SPECIFIED, or kernels without reasons) | corroborated by |",
             "|---|---|---|---|"]
    for fid, (reasons, locs, corr, _what, _advice) in DROP_REASON_FINDINGS.items():
        lines.append("| `%s` | %s | %s | %s |" % (fid, ", ".join(reasons) or "-", ", ".join(locs) or "-",
                                                  ", ".join("`%s`" % c for c in corr) or "-"))
    for (reason, loc), (fid, what) in DROP_REASON_AT.items():
        lines.append("| `%s` | %s at %s only: %s | | |" % (fid, reason, loc, what))
    lines += ["", "Noise (counted in `drops.noise`, never a loss finding); `any` matches every reason or location:", "",
              "| reason | location | why it is not network loss |", "|---|---|---|"]
    for reason, loc, why in DROP_REASON_NOISE:
        lines.append("| %s | %s | %s |" % (reason or "any", loc or "any", why))
    return "\n".join(lines) + "\n"
