# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The counter findings: nic and softnet, ip, tcp, udp and socket (/proc/net/snmp, netstat, snmp6), and COUNTER_MAP,
every counter name the sources expose mapped to the finding that reports it or to "not a drop" and why.

Part of the analyzer (analyze.py: its thresholds, context and entry points), which loads it only where the netstat layer was collected.
Pure functions, no I/O.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import (
    SYMPTOMS, _Ctx, _dict, _fmt_rate, _get, _int, _interfaces, _layer, _rate, _secs, _snmp, counter, grade, layer_of)


# ------------------------------------------------------------------------------------------------
# nic and softnet
# ------------------------------------------------------------------------------------------------

_NIC = (
    ("nic.rx_dropped", ("rx_dropped",), "rx_packets", "received packets dropped",
     "The kernel dropped received packets before any protocol saw them: no buffer, a full backlog, or frames it "
     "does not handle (unknown protocol, wrong VLAN) - the latter are benign.",
     "Compare with softnet drops and the driver statistics (ethtool -S); raise the ring size (ethtool -G) or "
     "netdev_max_backlog if the rate is high."),
    ("nic.rx_fifo", ("rx_fifo_errors", "rx_over_errors"), "rx_packets", "receive FIFO/ring overruns",
     "The NIC's receive ring or FIFO overflowed: the host did not take packets off it fast enough.",
     "Raise the RX ring (ethtool -G DEV rx N), spread interrupts (RSS, irqbalance) or reduce per-packet work."),
    ("nic.rx_missed", ("rx_missed_errors",), "rx_packets", "packets missed by the NIC",
     "The NIC missed packets for lack of host buffers (rx_missed_errors).",
     "Raise the RX ring (ethtool -G), check interrupt coalescing and CPU load on the NIC's queues."),
    ("nic.rx_errors", ("rx_errors",), "rx_packets", "receive errors",
     "Frames arrived damaged or malformed (CRC, frame, length errors): cabling, optics, duplex or driver problems.",
     "Look at the breakdown (rx_crc_errors, rx_frame_errors, rx_length_errors) and the link (ethtool DEV); "
     "replace cables or optics, check duplex and speed."),
    ("nic.tx_dropped", ("tx_dropped",), "tx_packets", "transmitted packets dropped",
     "Packets were dropped on the way out of the interface (a full queue, a link down, a bridge without ports).",
     "Check the interface's qdisc and link state; raise txqueuelen if the queue overflows."),
    ("nic.tx_errors", ("tx_errors",), "tx_packets", "transmit errors",
     "The driver could not transmit packets (carrier, aborted, FIFO, heartbeat or window errors).",
     "Check the link (ethtool DEV, carrier changes) and the driver's statistics (ethtool -S)."),
)
_RX_ERROR_PARTS = ("rx_crc_errors", "rx_frame_errors", "rx_length_errors", "rx_fifo_errors", "rx_over_errors",
                   "rx_missed_errors")
_DRIVER_DROP_WORDS = ("drop", "miss", "no_buf", "nobuf", "no_dma", "fifo", "overrun", "discard", "alloc_fail")


def _check_nic(c: _Ctx) -> None:
    if not c.deltas:
        return
    before = _interfaces(c.before)
    for name, row in sorted(_interfaces(c.after).items()):
        old = before.get(name)
        if not isinstance(old, dict) or not isinstance(row, dict):
            continue
        if old.get("ifindex") is not None and row.get("ifindex") is not None and old["ifindex"] != row["ifindex"]:
            continue  # a different link with the same name
        stats, ostats = _dict(row.get("stats")), _dict(old.get("stats"))

        def cnt(key: str) -> Dict[str, Any]:
            return counter(key, _int(ostats.get(key)), _int(stats.get(key)), c.seconds)

        for fid, keys, total_key, what, explanation, advice in _NIC:
            counters = [cnt(k) for k in keys if k in stats]
            if not counters:
                continue
            traffic = cnt(total_key) if total_key in stats else None
            # rx_packets/tx_packets count what went through, not the drops or errors
            denominator = {"name": total_key, "delta": traffic["delta"], "includes_events": False} if traffic else None
            extra: Dict[str, Any] = {"interface": name, "kind": row.get("kind")}
            if fid == "nic.rx_errors":
                extra["breakdown"] = [cnt(k) for k in _RX_ERROR_PARTS if k in stats]
            c.counter_finding(fid, "interface " + name, counters, what, explanation,
                              advice.replace("DEV", name), denominator=denominator, extra=extra)
        _driver_drops(c, name, row, old)


def _driver_drops(c: _Ctx, name: str, row: Dict[str, Any], old: Dict[str, Any]) -> None:
    ds, ods = row.get("driver_stats"), old.get("driver_stats")
    if not isinstance(ds, dict) or not isinstance(ods, dict):
        return
    moved = []
    for key in sorted(ds):
        low = key.lower()
        if any(w in low for w in _DRIVER_DROP_WORDS) and key in ods:
            cnt = counter(key, _int(ods.get(key)), _int(ds.get(key)), c.seconds)
            if cnt["delta"]:
                moved.append(cnt)
    if not moved:
        return
    # per-queue and total counters overlap (rx0_drops, rx_drops): the largest one is the magnitude
    top = max(moved, key=lambda x: x["delta"])
    severity = grade(c.th["nic.driver_drops"], top["delta"], top["rate"])
    c.add("nic.driver_drops", severity, "interface " + name,
          "interface %s: driver counter %s +%d in %s%s" % (name, top["name"], top["delta"], _secs(c.seconds),
                                                           _fmt_rate(top["rate"])),
          {"counters": moved, "delta": top["delta"], "rate": top["rate"], "interface": name, "kind": row.get("kind")},
          "The driver's own statistics (ethtool -S) count dropped or missed packets on %s." % name,
          "Read ethtool -S %s; raise the ring sizes (ethtool -G) or check the queue's CPU." % name)


def _softnet_sum(facts: Optional[Dict[str, Any]], key: str) -> Tuple[Optional[int], Dict[Any, int]]:
    rows = _get(_layer(facts, "netstat"), "softnet")
    if not isinstance(rows, list) or not rows:
        return None, {}
    per_cpu = dict((r.get("cpu", r.get("index")), _int(r.get(key)) or 0) for r in rows if isinstance(r, dict))
    return sum(per_cpu.values()), per_cpu


def _check_softnet(c: _Ctx) -> None:
    if not c.deltas:
        return
    for fid, key, what, explanation, advice in (
            ("softnet.dropped", "dropped", "backlog drops",
             "A CPU's input backlog (netdev_max_backlog) was full and received packets were dropped before the "
             "protocols saw them.",
             "Raise net.core.netdev_max_backlog, spread the load (RPS/RSS, irqbalance) or reduce per-packet work."),
            ("softnet.time_squeeze", "time_squeeze", "time squeezes",
             "NAPI polling ran out of budget or time with packets still waiting; sustained squeezes lead to drops.",
             "Raise net.core.netdev_budget / netdev_budget_usecs or spread the load over more CPUs.")):
        total_b, cpus_b = _softnet_sum(c.before, key)
        total_a, cpus_a = _softnet_sum(c.after, key)
        if total_a is None or total_b is None:
            continue
        per_cpu = [counter("cpu%s.%s" % (cpu, key), cpus_b.get(cpu), v, c.seconds)
                   for cpu, v in sorted(cpus_a.items(), key=lambda kv: str(kv[0])) if cpus_b.get(cpu) is not None]
        total = counter(key, total_b, total_a, c.seconds)
        extra: Dict[str, Any] = {"per_cpu": [x for x in per_cpu if x["delta"]]}
        if key == "dropped":
            # the RPS flow limit's drops are part of dropped (counted on the steering CPU): say how many they were
            flow = counter("flow_limit_count", _softnet_sum(c.before, "flow_limit_count")[0],
                           _softnet_sum(c.after, "flow_limit_count")[0], c.seconds)
            if flow["delta"]:
                extra["flow_limit_count"] = flow
                what = "backlog drops (%d of them by the RPS flow limit, net.core.flow_limit_cpu_bitmap)" % flow["delta"]
        c.counter_finding(fid, "softnet (all CPUs)", [total], what, explanation, advice, extra=extra)


def check(c: _Ctx, global_layers: bool) -> None:
    """The counter findings of one target: its interfaces and protocol counters, and softnet (global to the host) on
    the target that carries the host's global layers."""
    _check_nic(c)
    _check_snmp(c)
    if global_layers:
        _check_softnet(c)


# ------------------------------------------------------------------------------------------------
# ip, tcp, udp, socket: /proc/net/snmp, netstat, snmp6
# ------------------------------------------------------------------------------------------------


# (finding id, [(section, field)], denominator [(section, field)] or None, what, explanation, advice).
# A denominator counts the events themselves (Tcp.ActiveOpens + PassiveOpens + TCPSynRetrans: every SYN and SYN-ACK
# sent, the retransmitted ones too) unless the id is in _DENOMINATOR_EXCLUDES_EVENTS (OutSegs does not count the
# retransmitted segments, InDatagrams not the datagrams dropped): its share is then of denominator + events.
_DENOMINATOR_EXCLUDES_EVENTS = ("tcp.timeouts", "tcp.retrans", "tcp.embryonic_rsts", "udp.rcvbuf_errors", "udp.sndbuf_errors")
_SNMP: List[Tuple[str, Tuple[Tuple[str, str], ...], Optional[Tuple[Tuple[str, str], ...]], str, str, str]] = [
    ("tcp.listen_overflow", (("TcpExt", "ListenOverflows"), ("TcpExt", "ListenDrops")), None,
     "listen queue overflows/drops",
     "A listening socket's accept queue was full (the application does not accept() fast enough or its backlog is "
     "small): the kernel dropped incoming SYNs or handshake ACKs, and clients retransmit.",
     "Make the application accept faster, raise its listen backlog and net.core.somaxconn / "
     "net.ipv4.tcp_max_syn_backlog; ss -lnt shows Recv-Q (queued) against Send-Q (backlog)."),
    ("tcp.syn_retrans", (("TcpExt", "TCPSynRetrans"),), (("Tcp", "ActiveOpens"), ("Tcp", "PassiveOpens"), ("TcpExt", "TCPSynRetrans")),
     "SYN/SYN-ACK retransmits",
     "SYNs or SYN-ACKs had to be sent again: the first ones or their answers were lost on the way. This is a "
     "symptom; the cause is a drop somewhere on the path.",
     "Look for the cause on both ends and in between: random-drop rules, netem, firewall drops, listen overflows."),
    ("tcp.timeouts", (("TcpExt", "TCPTimeouts"),), (("Tcp", "OutSegs"),), "retransmission timeouts",
     "The retransmission timer expired on connections: segments or their ACKs were lost and fast retransmit could "
     "not recover. A symptom of loss elsewhere.",
     "Find where segments are lost (the other findings of this host, the path, the peer)."),
    ("tcp.retrans", (("Tcp", "RetransSegs"),), (("Tcp", "OutSegs"),), "retransmitted segments",
     "TCP retransmitted segments: data or ACKs were lost (or badly delayed). A symptom of loss elsewhere.",
     "Find where segments are lost (the other findings of this host, the path, the peer)."),
    ("tcp.embryonic_rsts", (("TcpExt", "EmbryonicRsts"),), (("Tcp", "PassiveOpens"),), "resets of embryonic connections",
     "Half-open (SYN_RECV) connections were reset by the peer: clients that gave up, scanners, or SYN probes "
     "(hping3 -S) whose kernel answers the SYN-ACK with a reset.",
     "Usually harmless; many of them point to clients timing out on a slow handshake or to a scan."),
    ("udp.rcvbuf_errors", (("Udp", "RcvbufErrors"), ("Udp6", "RcvbufErrors"), ("UdpLite", "RcvbufErrors"),
                           ("UdpLite6", "RcvbufErrors")),
     (("Udp", "InDatagrams"), ("Udp6", "InDatagrams")), "UDP receive buffer errors",
     "Datagrams were dropped because the receiving socket's buffer was full: the application reads too slowly or "
     "its SO_RCVBUF is too small.",
     "Raise the socket's receive buffer (SO_RCVBUF, net.core.rmem_max / rmem_default) or read faster; "
     "ss -uamn shows the sockets' drops (d)."),
    ("udp.sndbuf_errors", (("Udp", "SndbufErrors"), ("Udp6", "SndbufErrors"), ("UdpLite", "SndbufErrors"),
                           ("UdpLite6", "SndbufErrors")),
     (("Udp", "OutDatagrams"), ("Udp6", "OutDatagrams")), "UDP send buffer errors",
     "Datagrams could not be sent because the socket's send buffer (or the qdisc below it) was full.",
     "Raise SO_SNDBUF / net.core.wmem_max, or pace the sender."),
    ("ip.in_no_routes", (("IpExt", "InNoRoutes"), ("Ip6", "InNoRoutes")), None, "packets received with no route",
     "Received packets were dropped because there was no route to forward or deliver them.",
     "Check the routing table (ip route get ADDR) and forwarding settings for the dropped destinations."),
    ("ip.out_no_routes", (("Ip", "OutNoRoutes"), ("Ip6", "OutNoRoutes")), None, "packets sent with no route",
     "Locally generated packets were dropped because no route matched their destination.",
     "Check the routing table (ip route get ADDR) and the default route."),
    ("ip.frag_fails", (("Ip", "FragFails"), ("Ip6", "FragFails")), None, "fragmentation failures",
     "Packets too big for the path's MTU could not be fragmented (Don't Fragment set, or IPv6 forwarding) and were "
     "dropped.",
     "Check MTUs along the path (ip link, tracepath), let ICMP 'fragmentation needed' / 'packet too big' through, "
     "or clamp the TCP MSS."),
    ("ip.reasm_fails", (("Ip", "ReasmFails"), ("Ip6", "ReasmFails")), None, "reassembly failures",
     "Fragmented packets could not be reassembled (fragments lost, timed out or over the reassembly memory limit).",
     "Avoid fragmentation (MTU, MSS), or raise net.ipv4.ipfrag_high_thresh if fragments are dropped under load."),
    ("ip.rp_filter", (("TcpExt", "IPReversePathFilter"),), None, "reverse-path filter drops",
     "Packets were dropped by reverse-path filtering (rp_filter): they arrived on an interface that is not the "
     "route back to their source (asymmetric routing, multi-homing).",
     "Set net.ipv4.conf.IFACE.rp_filter to 2 (loose) or 0 where routing is asymmetric on purpose."),
    ("socket.tcp_backlog_drop", (("TcpExt", "TCPBacklogDrop"),), None, "TCP socket backlog drops",
     "Segments were dropped because a socket was busy (owned by the application) and its backlog was full.",
     "Raise the socket's receive buffer, or reduce the time the application holds the socket."),
    ("socket.tcp_rcvq_drop", (("TcpExt", "TCPRcvQDrop"), ("TcpExt", "TCPZeroWindowDrop")), None,
     "TCP receive queue drops",
     "Segments were dropped because the socket's receive queue was full or its window closed: the application "
     "reads too slowly.",
     "Read faster or raise the receive buffer (net.ipv4.tcp_rmem)."),
    ("socket.tcp_pruned", (("TcpExt", "RcvPruned"), ("TcpExt", "OfoPruned")), None, "TCP receive queue pruning",
     "Packets were pruned from sockets' receive or out-of-order queues under memory pressure.",
     "Raise net.ipv4.tcp_rmem / tcp_mem, or read faster."),
    # drop counters that had no finding (COUNTER_MAP)
    ("ip.header_errors", (("Ip", "InHdrErrors"), ("Ip", "InAddrErrors"), ("Ip", "InUnknownProtos"), ("IpExt", "InTruncatedPkts"),
                          ("Ip6", "InHdrErrors"), ("Ip6", "InAddrErrors"), ("Ip6", "InUnknownProtos"), ("Ip6", "InTruncatedPkts"),
                          ("Ip6", "InTooBigErrors")), None, "IP packets dropped on receipt (header, address, protocol)",
     "Received IP packets were dropped before delivery: a bad header or checksum, a truncated packet, a destination "
     "this host does not accept, a protocol nothing handles, or (IPv6) a packet too big to forward.",
     "Look for corruption (ethtool -S, ip -s link), misaddressed traffic (tcpdump) or MTU problems on the path."),
    ("ip.discards", (("Ip", "InDiscards"), ("Ip", "OutDiscards"), ("Ip6", "InDiscards"), ("Ip6", "OutDiscards")), None,
     "IP packets discarded",
     "Packets were discarded by the IP layer without a more specific IP counter: memory shortage, or (OutDiscards) "
     "a drop below IP on the way out, such as a qdisc, a neighbour queue or a device. A symptom when a cause of "
     "another layer explains it.",
     "Look at the qdisc, neighbour and device findings of this host; they name where the packets were dropped."),
    ("ip.icmp_errors", (("Icmp", "InErrors"), ("Icmp", "OutErrors"), ("Icmp6", "InErrors"), ("Icmp6", "OutErrors")), None,
     "ICMP errors (bad messages received, messages not sent)",
     "ICMP messages were dropped: received ones with a bad checksum or length, or ones the host could not send.",
     "Look for corruption on the path, and at the routes the host answers ICMP on."),
    ("tcp.in_errors", (("Tcp", "InErrs"),), None, "TCP segments received in error",
     "TCP segments were dropped on receipt because of a bad checksum or header (Tcp InErrs, which includes "
     "InCsumErrors).",
     "Look for corruption on the path (NIC offloads, a faulty link: ethtool -S, ip -s link)."),
    ("tcp.in_drops", tuple(("TcpExt", n) for n in (
        "PAWSActive", "PAWSEstab", "PAWSOldAck", "PAWSTimewait", "BeyondWindow", "TSEcrRejected", "TCPMinTTLDrop",
        "PFMemallocDrop", "TCPOFODrop", "TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure", "TCPAORequired",
        "TCPAOBad", "TCPAOKeyNotFound", "OutOfWindowIcmps", "LockDroppedIcmps", "TCPAODroppedIcmps", "SyncookiesFailed",
        "TCPAbortOnMemory", "TCPMigrateReqFailure")), None, "TCP segments dropped by the receive path's checks",
     "TCP dropped segments that failed its checks (PAWS timestamps, out of window, minimum TTL, MD5 or AO "
     "signatures, an invalid syncookie, ICMP for a wrong sequence), could not queue out of order under memory "
     "limits, or aborted connections under memory pressure.",
     "The evidence names the counters: old duplicates and PAWS point to middleboxes rewriting timestamps or "
     "sequence numbers; MD5/AO to a key mismatch; memory to net.ipv4.tcp_mem."),
]


def _attempt_fails(c: _Ctx, before: Dict[str, Any], after: Dict[str, Any]) -> None:
    """Tcp AttemptFails also counts every embryonic reset (a SYN_RECV socket reset by its peer, reported as
    tcp.embryonic_rsts): the active opens that failed are the difference."""
    if _get(after, "Tcp", "AttemptFails") is None:
        return
    fails = counter("Tcp.AttemptFails", _int(_get(before, "Tcp", "AttemptFails")), _int(_get(after, "Tcp", "AttemptFails")), c.seconds)
    embryonic = counter("TcpExt.EmbryonicRsts", _int(_get(before, "TcpExt", "EmbryonicRsts")),
                        _int(_get(after, "TcpExt", "EmbryonicRsts")), c.seconds)
    opens = counter("Tcp.ActiveOpens", _int(_get(before, "Tcp", "ActiveOpens")), _int(_get(after, "Tcp", "ActiveOpens")), c.seconds)
    if fails["delta"] is None:
        return
    active = max(0, fails["delta"] - (embryonic["delta"] or 0))
    if active <= 0:
        return
    c.graded("tcp.attempt_fails", "tcp", active, [fails, embryonic], "failed connection attempts",
             "Outgoing connection attempts failed (reset or timed out during the handshake): refused ports, or SYNs "
             "and SYN-ACKs lost on the way. (AttemptFails minus EmbryonicRsts, which AttemptFails also counts.)",
             "Tell refused from lost: ss -tan state syn-sent, the peer's listen state, and the drop findings of the "
             "path.", denominator={"name": "Tcp.ActiveOpens", "delta": opens["delta"], "counters": [opens]}, kind="symptom")


def _udp_in_errors(c: _Ctx, before: Dict[str, Any], after: Dict[str, Any]) -> None:
    """InErrors counts buffer errors too: only what they do not explain (checksum and others) is reported."""
    counters, rcvbuf = [], 0
    for sec in ("Udp", "Udp6"):
        if _get(after, sec, "InErrors") is None:
            continue
        counters.append(counter(sec + ".InErrors", _int(_get(before, sec, "InErrors")), _int(_get(after, sec, "InErrors")), c.seconds))
        rb = counter(sec + ".RcvbufErrors", _int(_get(before, sec, "RcvbufErrors")), _int(_get(after, sec, "RcvbufErrors")), c.seconds)
        rcvbuf += rb["delta"] or 0
        counters.append(rb)
        counters.append(counter(sec + ".InCsumErrors", _int(_get(before, sec, "InCsumErrors")),
                                _int(_get(after, sec, "InCsumErrors")), c.seconds))
    in_errors = sum(x["delta"] or 0 for x in counters if x["name"].endswith(".InErrors"))
    other = in_errors - rcvbuf
    if other <= 0:
        return
    rate = _rate(other, c.seconds)
    severity = grade(c.th["udp.in_errors"], other, rate)
    c.add("udp.in_errors", severity, "udp",
          "udp: receive errors other than buffer errors +%d in %s%s" % (other, _secs(c.seconds), _fmt_rate(rate)),
          {"counters": counters, "delta": other, "rate": rate},
          "UDP datagrams were dropped on receipt for reasons other than a full buffer: bad checksums, short "
          "datagrams, or memory limits (net.ipv4.udp_mem).",
          "Check InCsumErrors (damaged packets, a NIC offload problem) and UDP memory (net.ipv4.udp_mem).")


def _check_snmp(c: _Ctx) -> None:
    if not c.deltas:
        return
    before, after = _snmp(c.before), _snmp(c.after)
    if not before or not after:
        return
    for fid, fields, den_fields, what, explanation, advice in _SNMP:
        counters = [counter("%s.%s" % (s, f), _int(_get(before, s, f)), _int(_get(after, s, f)), c.seconds)
                    for s, f in fields if _get(after, s, f) is not None]
        if not counters:
            continue
        if fid == "tcp.listen_overflow":
            # ListenDrops includes ListenOverflows: the larger of the two is the number of drops
            top = max(counters, key=lambda x: x["delta"] or 0)
            counters = [top] + [x for x in counters if x is not top]
            _one(c, fid, counters, top, what, explanation, advice)
            continue
        denominator = None
        if den_fields:
            dens = [counter("%s.%s" % (s, f), _int(_get(before, s, f)), _int(_get(after, s, f)), c.seconds)
                    for s, f in den_fields if _get(after, s, f) is not None]
            if dens and all(d["delta"] is not None for d in dens):
                denominator = {"name": " + ".join(d["name"] for d in dens), "delta": sum(d["delta"] for d in dens),
                               "counters": dens, "includes_events": fid not in _DENOMINATOR_EXCLUDES_EVENTS}
        c.counter_finding(fid, layer_of(fid), counters, what, explanation, advice, denominator=denominator,
                          kind="symptom" if fid in SYMPTOMS else "counter")
    _attempt_fails(c, before, after)
    _udp_in_errors(c, before, after)


def _one(c: _Ctx, fid: str, counters: List[Dict[str, Any]], top: Dict[str, Any], what: str, explanation: str,
         advice: str) -> None:
    """A finding whose magnitude is one counter (``top``) and the others context."""
    if top["delta"] is None:
        return
    severity = grade(c.th[fid], top["delta"], top["rate"])
    c.add(fid, severity, layer_of(fid),
          "%s: %s +%d in %s%s" % (layer_of(fid), what, top["delta"], _secs(c.seconds), _fmt_rate(top["rate"])),
          {"counters": counters, "delta": top["delta"], "rate": top["rate"]}, explanation, advice)


# ------------------------------------------------------------------------------------------------
# COUNTER_MAP: every counter name the sources expose -> the finding that reports it, or None (not a drop) and why.
# docs/drop-reasons.md renders it (counters_markdown()); a unit test reads the names of real kernels saved in
# tests/unit/fixtures/counters/ and fails when one matches no row. Rows: (source, name pattern, finding id or None,
# why); the name is "Section:Name" for snmp and netstat, the raw name for snmp6, "file:column" for /proc/net/stat,
# the column's key for softnet, link and qdisc; the first row whose pattern matches the whole name wins. A finding id
# whose counter source is not collected (rt_cache, arp_cache, synproxy) is a drop-reason finding that reports the
# same drops (said in the row).
# ------------------------------------------------------------------------------------------------

_TRAFFIC = "not a drop: traffic, octets, message types or configuration"
COUNTER_MAP: Tuple[Tuple[str, str, Optional[str], str], ...] = (
    # /proc/net/snmp
    ("snmp", r"Ip:(InHdrErrors|InAddrErrors|InUnknownProtos)", "ip.header_errors", "received packets dropped: header, address, protocol"),
    ("snmp", r"Ip:(InDiscards|OutDiscards)", "ip.discards", "discarded by IP (or below it on output)"),
    ("snmp", r"Ip:OutNoRoutes", "ip.out_no_routes", "no route for a locally generated packet"),
    ("snmp", r"Ip:(ReasmFails|ReasmTimeout)", "ip.reasm_fails", "fragments not reassembled (ReasmTimeout is part of ReasmFails)"),
    ("snmp", r"Ip:FragFails", "ip.frag_fails", "a packet that needed fragmenting and could not be"),
    ("snmp", r"Ip:(Forwarding|DefaultTTL|InReceives|InDelivers|ForwDatagrams|OutRequests|OutTransmits|ReasmReqds|ReasmOKs|"
             r"FragOKs|FragCreates)", None, _TRAFFIC),
    ("snmp", r"Icmp:(InErrors|OutErrors)", "ip.icmp_errors", "ICMP messages dropped (received in error, or not sent)"),
    ("snmp", r"Icmp:InCsumErrors", "ip.icmp_errors", "part of Icmp InErrors"),
    ("snmp", r"Icmp:(OutRateLimitGlobal|OutRateLimitHost)", None,
     "not a drop: ICMP replies not generated (rate limit); the packet that asked for one has its own counter"),
    ("snmp", r"Icmp:(In|Out)(Msgs|DestUnreachs|TimeExcds|ParmProbs|SrcQuenchs|Redirects|Echos|EchoReps|Timestamps|"
             r"TimestampReps|AddrMasks|AddrMaskReps)", None, _TRAFFIC),
    ("snmp", r"IcmpMsg:(In|Out)Type\d+", None, _TRAFFIC),
    ("snmp", r"Tcp:(RtoAlgorithm|RtoMin|RtoMax|MaxConn|ActiveOpens|PassiveOpens|CurrEstab|InSegs|OutSegs)", None, _TRAFFIC),
    ("snmp", r"Tcp:AttemptFails", "tcp.attempt_fails", "failed connection attempts (a symptom)"),
    ("snmp", r"Tcp:(EstabResets|OutRsts)", None, "not a drop: connections reset (resets sent or received)"),
    ("snmp", r"Tcp:RetransSegs", "tcp.retrans", "retransmitted segments (a symptom of loss)"),
    ("snmp", r"Tcp:(InErrs|InCsumErrors)", "tcp.in_errors", "segments received in error (InCsumErrors is part of InErrs)"),
    ("snmp", r"(Udp|UdpLite):(InDatagrams|OutDatagrams)", None, _TRAFFIC),
    ("snmp", r"(Udp|UdpLite):NoPorts", "socket.no_listener",
     "datagrams to a port nobody listens on (the drop-reason finding NO_SOCKET names them; no counter finding)"),
    ("snmp", r"(Udp|UdpLite):(InErrors|InCsumErrors|MemErrors)", "udp.in_errors", "receive errors (InCsumErrors and MemErrors are part of InErrors)"),
    ("snmp", r"(Udp|UdpLite):RcvbufErrors", "udp.rcvbuf_errors", "receive buffer full"),
    ("snmp", r"(Udp|UdpLite):SndbufErrors", "udp.sndbuf_errors", "send buffer (or a drop below it) full"),
    ("snmp", r"(Udp|UdpLite):IgnoredMulti", None, "not a drop: broadcast or multicast datagrams no socket subscribed to"),
    # /proc/net/netstat
    ("netstat", r"TcpExt:(ListenOverflows|ListenDrops|TCPReqQFullDrop)", "tcp.listen_overflow",
     "SYN or accept queue full (TCPReqQFullDrop is part of ListenDrops)"),
    ("netstat", r"TcpExt:(SyncookiesSent|SyncookiesRecv|TCPReqQFullDoCookies)", None,
     "not a drop: syncookies answered a full SYN queue instead of dropping"),
    ("netstat", r"TcpExt:EmbryonicRsts", "tcp.embryonic_rsts", "half-open connections reset (a symptom)"),
    ("netstat", r"TcpExt:(RcvPruned|OfoPruned)", "socket.tcp_pruned", "queues pruned under memory pressure"),
    ("netstat", r"TcpExt:(PruneCalled|TCPRcvCollapsed|TCPBacklogCoalesce|TCPRcvCoalesce|TCPOFOQueue|TCPOFOMerge)", None,
     "not a drop: receive-queue housekeeping (collapsing, coalescing, out-of-order queueing)"),
    ("netstat", r"TcpExt:TCPBacklogDrop", "socket.tcp_backlog_drop", "socket backlog full"),
    ("netstat", r"TcpExt:(TCPRcvQDrop|TCPZeroWindowDrop)", "socket.tcp_rcvq_drop", "receive queue full or window closed"),
    ("netstat", r"TcpExt:IPReversePathFilter", "ip.rp_filter", "reverse-path filter"),
    ("netstat", r"TcpExt:(PAWSActive|PAWSEstab|PAWSOldAck|PAWSTimewait|BeyondWindow|TSEcrRejected|TCPMinTTLDrop|PFMemallocDrop|"
                r"TCPOFODrop|TCPMD5NotFound|TCPMD5Unexpected|TCPMD5Failure|TCPAORequired|TCPAOBad|TCPAOKeyNotFound|"
                r"OutOfWindowIcmps|LockDroppedIcmps|TCPAODroppedIcmps|SyncookiesFailed|TCPAbortOnMemory|TCPMigrateReqFailure)",
     "tcp.in_drops", "segments dropped by TCP's receive checks or memory limits"),
    ("netstat", r"TcpExt:TCPSynRetrans", "tcp.syn_retrans", "SYN retransmits (a symptom)"),
    ("netstat", r"TcpExt:TCPTimeouts", "tcp.timeouts", "retransmission timeouts (a symptom)"),
    ("netstat", r"TcpExt:TCPDeferAcceptDrop", None, "not a drop: TCP_DEFER_ACCEPT ignores the handshake's bare ACK by design"),
    ("netstat", r"TcpExt:(TCPTimeWaitOverflow|TW|TWRecycled|TWKilled)", None, "not a drop: TIME_WAIT sockets (not packets)"),
    ("netstat", r"TcpExt:TCPFastOpen(Active|ActiveFail|Passive|PassiveFail|ListenOverflow|CookieReqd|Blackhole|"
                r"PassiveAltKey)", None, "not a drop: TCP Fast Open falls back to a normal handshake"),
    ("netstat", r"TcpExt:(TCPACKSkipped(SynRecv|PAWS|Seq|FinWait2|TimeWait|Challenge)|TCPChallengeACK|TCPSYNChallenge)", None,
     "not a drop: ACKs the host chose not to send, or challenge ACKs it sent"),
    ("netstat", r"TcpExt:(TCPAbortOnData|TCPAbortOnClose|TCPAbortOnTimeout|TCPAbortOnLinger|TCPAbortFailed)", None,
     "not a drop: connections aborted by the application or a timeout (the timeouts' cause is tcp.timeouts')"),
    ("netstat", r"TcpExt:(TCPLostRetransmit|TCPLossProbes|TCPLossProbeRecovery|TCPFastRetrans|TCPSlowStartRetrans|"
                r"TCPRetransFail|TCPSpuriousRTOs|TCPSpuriousRtxHostQueues|TCPRenoRecovery|TCPSackRecovery|"
                r"TCPRenoRecoveryFail|TCPSackRecoveryFail|TCPFullUndo|TCPPartialUndo|TCPDSACKUndo|TCPLossUndo|"
                r"TCPRenoFailures|TCPSackFailures|TCPLossFailures|TCPSACKReorder|TCPRenoReorder|TCPTSReorder|"
                r"TCPSACKReneging|TcpTimeoutRehash|TcpDuplicateDataRehash|TCPPLBRehash)", None,
     "not a drop: loss recovery and retransmission accounting (symptoms of loss are tcp.retrans and tcp.timeouts)"),
    ("netstat", r"TcpExt:(TCPDSACKOldSent|TCPDSACKOfoSent|TCPDSACKRecv|TCPDSACKOfoRecv|TCPDSACKIgnoredOld|"
                r"TCPDSACKIgnoredNoUndo|TCPDSACKRecvSegs|TCPDSACKIgnoredDubious|TCPSACKDiscard|TCPSackShifted|TCPSackMerged|"
                r"TCPSackShiftFallback|DelayedACKs|DelayedACKLocked|DelayedACKLost|TCPHPHits|TCPHPAcks|TCPPureAcks|"
                r"TCPAutoCorking|TCP(From|To|Want)ZeroWindowAdv|TCPOrigDataSent|TCPHystart(Train|Delay)(Detect|Cwnd)|"
                r"TCPWinProbe|TCPKeepAlive|TCPMTUP(Fail|Success)|TCPDelivered|TCPDeliveredCE|TCPAckCompressed|"
                r"TCPWqueueTooBig|TCPMigrateReqSuccess|TCPAOGood|BusyPollRxPackets|ArpFilter|TCPMemoryPressures|"
                r"TCPMemoryPressuresChrono)", None,
     "not a drop: TCP's own events (acknowledgements, windows, probes, congestion control, memory pressure entered)"),
    ("netstat", r"IpExt:InNoRoutes", "ip.in_no_routes", "received packets with no route"),
    ("netstat", r"IpExt:InTruncatedPkts", "ip.header_errors", "truncated packets"),
    ("netstat", r"IpExt:InCsumErrors", "ip.header_errors", "part of Ip InHdrErrors"),
    ("netstat", r"IpExt:ReasmOverlaps", "ip.reasm_fails", "overlapping fragments (part of ReasmFails)"),
    ("netstat", r"IpExt:(In|Out)(Mcast|Bcast)?(Pkts|Octets)|IpExt:In(NoECT|ECT0|ECT1|CE)Pkts", None, _TRAFFIC),
    ("netstat", r"MPTcpExt:\w+", None,
     "not a drop: MPTCP protocol events (options, subflows, fallbacks); its packets are counted by the TCP counters"),
    # /proc/net/snmp6
    ("snmp6", r"Ip6(InHdrErrors|InAddrErrors|InUnknownProtos|InTruncatedPkts|InTooBigErrors)", "ip.header_errors",
     "received packets dropped: header, address, protocol, too big"),
    ("snmp6", r"Ip6(InDiscards|OutDiscards)", "ip.discards", "discarded by IPv6 (or below it on output)"),
    ("snmp6", r"Ip6InNoRoutes", "ip.in_no_routes", "received packets with no route"),
    ("snmp6", r"Ip6OutNoRoutes", "ip.out_no_routes", "no route for a locally generated packet"),
    ("snmp6", r"Ip6(ReasmFails|ReasmTimeout)", "ip.reasm_fails", "fragments not reassembled"),
    ("snmp6", r"Ip6FragFails", "ip.frag_fails", "a packet that could not be fragmented"),
    ("snmp6", r"Ip6(InReceives|InDelivers|OutForwDatagrams|OutRequests|OutTransmits|ReasmReqds|ReasmOKs|FragOKs|"
              r"FragCreates|(In|Out)(Mcast|Bcast)?(Pkts|Octets)|In(NoECT|ECT0|ECT1|CE)Pkts)", None, _TRAFFIC),
    ("snmp6", r"Icmp6(InErrors|OutErrors|InCsumErrors)", "ip.icmp_errors", "ICMPv6 messages dropped (InCsumErrors is part of InErrors)"),
    ("snmp6", r"Icmp6OutRateLimitHost", None, "not a drop: ICMPv6 replies not generated (rate limit)"),
    ("snmp6", r"Icmp6(In|Out)(Msgs|DestUnreachs|PktTooBigs|TimeExcds|ParmProblems|Echos|EchoReplies|GroupMembQueries|"
              r"GroupMembResponses|GroupMembReductions|RouterSolicits|RouterAdvertisements|NeighborSolicits|"
              r"NeighborAdvertisements|Redirects|MLDv2Reports|Type\d+)", None, _TRAFFIC),
    ("snmp6", r"(Udp6|UdpLite6)(InDatagrams|OutDatagrams)", None, _TRAFFIC),
    ("snmp6", r"(Udp6|UdpLite6)NoPorts", "socket.no_listener", "datagrams to a port nobody listens on (drop reason NO_SOCKET)"),
    ("snmp6", r"(Udp6|UdpLite6)(InErrors|InCsumErrors|MemErrors)", "udp.in_errors", "receive errors"),
    ("snmp6", r"(Udp6|UdpLite6)RcvbufErrors", "udp.rcvbuf_errors", "receive buffer full"),
    ("snmp6", r"(Udp6|UdpLite6)SndbufErrors", "udp.sndbuf_errors", "send buffer full"),
    ("snmp6", r"(Udp6|UdpLite6)IgnoredMulti", None, "not a drop: multicast datagrams no socket subscribed to"),
    # /proc/net/softnet_stat columns (_procfs.SOFTNET_COLUMNS; unused columns and the CPU number)
    ("softnet", r"dropped|flow_limit_count", "softnet.dropped", "the CPU's backlog was full (flow-limit drops are part of dropped)"),
    ("softnet", r"time_squeeze", "softnet.time_squeeze", "not a drop by itself: NAPI ran out of budget (leads to ring drops)"),
    ("softnet", r"processed|received_rps|cpu_collision|backlog_len|cpu|unused\d", None,
     "not a drop: packets processed, steered or queued, lock contention, the CPU number, unused columns"),
    # link statistics (_netlink.LINK_STATS)
    ("link", r"rx_dropped", "nic.rx_dropped", "received packets dropped by the kernel"),
    ("link", r"tx_dropped", "nic.tx_dropped", "packets dropped on transmit"),
    ("link", r"rx_errors|rx_length_errors|rx_crc_errors|rx_frame_errors", "nic.rx_errors", "frames received in error (the parts of rx_errors)"),
    ("link", r"rx_fifo_errors|rx_over_errors", "nic.rx_fifo", "receive FIFO or ring overruns"),
    ("link", r"rx_missed_errors", "nic.rx_missed", "frames the NIC missed (no buffer)"),
    ("link", r"tx_errors|tx_aborted_errors|tx_carrier_errors|tx_fifo_errors|tx_heartbeat_errors|tx_window_errors",
     "nic.tx_errors", "frames not transmitted (the parts of tx_errors)"),
    ("link", r"collisions", None, "not a drop: half-duplex collisions, retried by the NIC (a failure is tx_aborted_errors)"),
    ("link", r"(rx|tx)_(packets|bytes|compressed)|multicast", None, _TRAFFIC),
    # qdisc statistics
    ("qdisc", r"drops", "qdisc.drops", "packets the qdisc dropped (netem loss included: qdisc.netem)"),
    ("qdisc", r"overlimits|requeues", None, "not a drop: shaping delayed packets (overlimits) or the device pushed back (requeues)"),
    ("qdisc", r"bytes|packets|backlog_bytes|qlen", None, _TRAFFIC),
    # /proc/net/stat/*
    ("stat", r"nf_conntrack:drop", "conntrack.drop", "new flows dropped: no entry could be allocated"),
    ("stat", r"nf_conntrack:early_drop", "conntrack.early_drop", "entries evicted to make room"),
    ("stat", r"nf_conntrack:insert_failed", "conntrack.insert_failed", "entries not inserted (a clash): packet dropped"),
    ("stat", r"nf_conntrack:(invalid|icmp_error)", None,
     "not a drop by itself: packets conntrack could not classify; a rule matching ctstate INVALID drops them "
     "(netfilter.drop_hits, drop reason NETFILTER_DROP)"),
    ("stat", r"nf_conntrack:(entries|clashres|found|new|ignore|delete|chainlength|insert|expect_new|expect_create|"
             r"expect_delete|search_restart|searched|delete_list)", None, "not a drop: table events and lookups"),
    ("stat", r"rt_cache:in_no_route", "ip.in_no_routes", "the same events as IpExt InNoRoutes"),
    ("stat", r"rt_cache:(in_martian_src|in_martian_dst)", "ip.drop_reason",
     "martian packets: no SNMP counter, rt_cache is not collected; the drop reasons IP_LOCALNET, IP_INVALID_SOURCE, ... "
     "(NOT_SPECIFIED at ip_rcv_finish_core before 6.13) report them"),
    ("stat", r"rt_cache:\w+", None, "not a drop: route lookups (the cache itself is gone since Linux 3.6)"),
    ("stat", r"(arp_cache|ndisc_cache):(unresolved_discards|table_fulls|res_failed)", "ip.drop_reason",
     "neighbour drops: the cache statistics are not collected (global to the host); the drop reasons NEIGH_QUEUEFULL, "
     "NEIGH_CREATEFAIL, NEIGH_FAILED report them"),
    ("stat", r"(arp_cache|ndisc_cache):\w+", None, "not a drop: neighbour table events"),
    ("stat", r"synproxy:cookie_invalid", "netfilter.drop_reason",
     "SYNPROXY dropped an ACK with an invalid cookie (drop reason NETFILTER_DROP; synproxy is not collected)"),
    ("stat", r"synproxy:\w+", None, "not a drop: SYNPROXY events"),
)


def counter_mapping(source: str, name: str) -> Optional[Tuple[Optional[str], str]]:
    """COUNTER_MAP's (finding id or None, why) for the counter ``name`` of ``source``; None when no row maps it."""
    for src, pattern, fid, why in COUNTER_MAP:
        if src == source and re.fullmatch(pattern, name):
            return fid, why
    return None


def counters_markdown() -> str:
    """COUNTER_MAP as docs/drop-reasons.md shows it."""
    lines = ["| source | counters (pattern) | finding | why |", "|---|---|---|---|"]
    for src, pattern, fid, why in COUNTER_MAP:
        lines.append("| %s | `%s` | %s | %s |" % (src, pattern.replace("|", "\\|"), "`%s`" % fid if fid else "not a drop", why))
    return "\n".join(lines) + "\n"
