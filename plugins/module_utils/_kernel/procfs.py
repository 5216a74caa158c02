# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for the /proc files that count dropped packets.

This module_utils is PRIVATE and should only be used by this collection.

Every function takes the file's text (str, or UTF-8 bytes) and raises only
ParseError on input it cannot read. Nothing here touches the file system.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError, to_int, to_text

Text = Union[str, bytes]
Counters = Dict[str, int]

# /proc/net/dev columns, in file order.
NET_DEV_FIELDS = (
    "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo", "rx_frame", "rx_compressed", "rx_multicast",
    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_fifo", "tx_colls", "tx_carrier", "tx_compressed",
)

# /proc/net/softnet_stat: 0-based column -> key (columns 3-7 are unused zeros). Column 11
# (backlog_len) appeared in kernel 5.10 and column 12 (the CPU number) in 5.10 too.
SOFTNET_COLUMNS = ((0, "processed"), (1, "dropped"), (2, "time_squeeze"), (8, "cpu_collision"),
                   (9, "received_rps"), (10, "flow_limit_count"), (11, "backlog_len"))
SOFTNET_MIN_COLUMNS = 9
SOFTNET_CPU_COLUMN = 12

# /proc/net/snmp6 name prefixes -> section; longest first so UdpLite6 wins over Udp6.
SNMP6_SECTIONS = ("UdpLite6", "Icmp6", "Udp6", "Ip6")
SNMP6_OTHER = "Other"


def _lines(text: Text, source: str) -> List[str]:
    return to_text(text, source).splitlines()


def _zip_table(names: Sequence[str], values: Sequence[str], source: str, line: int, base: int = 10) -> Counters:
    """One "header line + values line" table: names[i] -> int(values[i]); counts must match."""
    if len(names) != len(values):
        raise ParseError(source, line, "header has %d fields, values %d" % (len(names), len(values)))
    if len(set(names)) != len(names):
        raise ParseError(source, line, "header repeats a field name")
    return dict((name, to_int(value, source, line, base)) for name, value in zip(names, values))


def parse_snmp(text: Text, source: str = "/proc/net/snmp") -> Dict[str, Counters]:
    """/proc/net/snmp or /proc/net/netstat -> {"Tcp": {"MaxConn": -1, ...}, "TcpExt": {...}}.

    The files are pairs of lines "Section: Name1 Name2 ..." / "Section: v1 v2 ...".
    """
    result: Dict[str, Counters] = {}
    header: Optional[List[str]] = None
    header_section = ""
    for lineno, line in enumerate(_lines(text, source), 1):
        if not line.strip():
            continue
        section, sep, rest = line.partition(":")
        section = section.strip()
        if not sep or not section or " " in section:
            raise ParseError(source, lineno, "expected 'Section: fields', got %r" % line[:60])
        if header is None:
            header, header_section = rest.split(), section
            continue
        if section != header_section:
            raise ParseError(source, lineno, "values for %r follow the header of %r" % (section[:30], header_section[:30]))
        result.setdefault(section, {}).update(_zip_table(header, rest.split(), source, lineno))
        header = None
    if header is not None:
        raise ParseError(source, None, "header of %r has no values line" % header_section[:30])
    return result


def parse_snmp6(text: Text, source: str = "/proc/net/snmp6") -> Dict[str, Counters]:
    """/proc/net/snmp6 or /proc/net/dev_snmp6/IFACE -> {"Ip6": {"InReceives": 123}, "Icmp6": {...}}.

    Lines are "Ip6InReceives  123". The prefix (Ip6, Icmp6, Udp6, UdpLite6) becomes the
    section and is stripped from the name; other names (e.g. "ifIndex" of dev_snmp6) go
    to section "Other" unchanged.
    """
    result: Dict[str, Counters] = {}
    for lineno, line in enumerate(_lines(text, source), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ParseError(source, lineno, "expected 'Name value', got %d fields" % len(fields))
        name, value = fields
        section = next((p for p in SNMP6_SECTIONS if name.startswith(p) and len(name) > len(p)), SNMP6_OTHER)
        counter = name if section == SNMP6_OTHER else name[len(section):]
        result.setdefault(section, {})[counter] = to_int(value, source, lineno)
    return result


def parse_softnet_stat(text: Text, source: str = "/proc/net/softnet_stat") -> List[Counters]:
    """/proc/net/softnet_stat -> one dict per row (hex columns, 9 to 13 of them by kernel version).

    Keys: processed, dropped, time_squeeze, cpu_collision, received_rps, flow_limit_count,
    backlog_len (0 when the row lacks that column, as prometheus/procfs does), cpu (column 13,
    else the row index; also given as "index", procfs' name) and columns (the row's width).
    """
    rows: List[Counters] = []
    for lineno, line in enumerate(_lines(text, source), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < SOFTNET_MIN_COLUMNS:
            raise ParseError(source, lineno, "%d columns, at least %d expected" % (len(fields), SOFTNET_MIN_COLUMNS))
        values = [to_int(f, source, lineno, 16) for f in fields]
        row = dict((key, values[col] if col < len(values) else 0) for col, key in SOFTNET_COLUMNS)
        row["cpu"] = row["index"] = values[SOFTNET_CPU_COLUMN] if len(values) > SOFTNET_CPU_COLUMN else len(rows)
        row["columns"] = len(values)
        rows.append(row)
    return rows


def parse_net_dev(text: Text, source: str = "/proc/net/dev") -> Dict[str, Counters]:
    """/proc/net/dev -> {"eth0": {"rx_bytes": ..., "rx_dropped": ..., ... "tx_compressed": ...}}."""
    result: Dict[str, Counters] = {}
    for lineno, line in enumerate(_lines(text, source), 1):
        if not line.strip() or "|" in line:  # the two header lines
            continue
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name or " " in name:
            raise ParseError(source, lineno, "expected 'iface: counters', got %r" % line[:60])
        result[name] = _zip_table(NET_DEV_FIELDS, rest.split(), source, lineno)
    return result


def parse_conntrack_stat(text: Text, source: str = "/proc/net/stat/nf_conntrack") -> Dict[str, object]:
    """/proc/net/stat/nf_conntrack -> {"per_cpu": [{name: int}, ...], "total": {name: int}}.

    The first line names the columns (16 on older kernels, 17 with search_restart; any
    other count is accepted); each further line is one CPU in hex. "total" sums the CPUs
    except "entries", which is the global table size repeated on every row (first row's).
    """
    lines = [(n, line) for n, line in enumerate(_lines(text, source), 1) if line.strip()]
    if not lines:
        raise ParseError(source, None, "empty")
    names = [name.lower() for name in lines[0][1].split()]
    per_cpu = [_zip_table(names, line.split(), source, lineno, 16) for lineno, line in lines[1:]]
    total = dict((name, sum(cpu[name] for cpu in per_cpu)) for name in names)
    if "entries" in total:
        total["entries"] = per_cpu[0]["entries"] if per_cpu else 0
    return {"per_cpu": per_cpu, "total": total}


def parse_int_file(text: Text, source: str) -> int:
    """A one-integer file such as /proc/sys/net/netfilter/nf_conntrack_count."""
    body = to_text(text, source).strip()
    if not body or len(body.split()) != 1:
        raise ParseError(source, 1, "expected one integer, got %r" % body[:40])
    return to_int(body, source, 1)


# What each `netstat -s` line counts, from net-tools statistics.c (ecki/net-tools @ 2ab3c5e):
# section as netstat prints it -> {printf phrase: "Section.Counter" as returned by parse_snmp/
# parse_snmp6}. ICMP histogram lines live under "<Section> input histogram" / "... output
# histogram". SCTP (/proc/net/sctp/snmp) is not covered.
NETSTAT_S_PHRASES: Dict[str, Dict[str, str]] = {
    "Ip": {
        "Default TTL is %llu": "Ip.DefaultTTL",
        "%llu forwarded": "Ip.ForwDatagrams",
        "Forwarding is %s": "Ip.Forwarding",
        "%llu fragments created": "Ip.FragCreates",
        "%llu outgoing packets failed fragmentation": "Ip.FragFails",
        "%llu outgoing packets fragmented ok": "Ip.FragOKs",
        "%llu with invalid addresses": "Ip.InAddrErrors",
        "%llu incoming packets delivered": "Ip.InDelivers",
        "%llu incoming packets discarded": "Ip.InDiscards",
        "%llu with invalid headers": "Ip.InHdrErrors",
        "%llu total packets received": "Ip.InReceives",
        "%llu with unknown protocol": "Ip.InUnknownProtos",
        "%llu outgoing packets dropped": "Ip.OutDiscards",
        "%llu dropped because of missing route": "Ip.OutNoRoutes",
        "%llu requests sent out": "Ip.OutRequests",
        "%llu packet reassemblies failed": "Ip.ReasmFails",
        "%llu packets reassembled ok": "Ip.ReasmOKs",
        "%llu reassemblies required": "Ip.ReasmReqds",
        "%llu fragments dropped after timeout": "Ip.ReasmTimeout",
    },
    "Ip6": {
        "%llu fragments created": "Ip6.FragCreates",
        "%llu outgoing packets failed fragmentation": "Ip6.FragFails",
        "%llu outgoing packets fragmented ok": "Ip6.FragOKs",
        "%llu with invalid addresses": "Ip6.InAddrErrors",
        "%llu incoming packets delivered": "Ip6.InDelivers",
        "%llu incoming packets discarded": "Ip6.InDiscards",
        "%llu with invalid headers": "Ip6.InHdrErrors",
        "%llu incoming multicast packets": "Ip6.InMcastPkts",
        "%llu incoming packets with no route": "Ip6.InNoRoutes",
        "%llu total packets received": "Ip6.InReceives",
        "%llu with packets too big": "Ip6.InTooBigErrors",
        "%llu with truncated packets": "Ip6.InTruncatedPkts",
        "%llu with unknown protocol": "Ip6.InUnknownProtos",
        "%llu outgoing packets dropped": "Ip6.OutDiscards",
        "%llu forwarded": "Ip6.OutForwDatagrams",
        "%llu outgoing multicast packets": "Ip6.OutMcastPkts",
        "%llu dropped because of missing route": "Ip6.OutNoRoutes",
        "%llu requests sent out": "Ip6.OutRequests",
        "%llu packet reassemblies failed": "Ip6.ReasmFails",
        "%llu packets reassembled ok": "Ip6.ReasmOKs",
        "%llu reassemblies required": "Ip6.ReasmReqds",
        "%llu fragments dropped after timeout": "Ip6.ReasmTimeout",
    },
    "Icmp input histogram": {
        "address mask replies: %llu": "Icmp.InAddrMaskReps",
        "address mask request: %llu": "Icmp.InAddrMasks",
        "destination unreachable: %llu": "Icmp.InDestUnreachs",
        "echo replies: %llu": "Icmp.InEchoReps",
        "echo requests: %llu": "Icmp.InEchos",
        "wrong parameters: %llu": "Icmp.InParmProbs",
        "redirects: %llu": "Icmp.InRedirects",
        "source quenches: %llu": "Icmp.InSrcQuenchs",
        "timeout in transit: %llu": "Icmp.InTimeExcds",
        "timestamp reply: %llu": "Icmp.InTimestampReps",
        "timestamp request: %llu": "Icmp.InTimestamps",
    },
    "Icmp": {
        "%llu input ICMP message failed": "Icmp.InErrors",
        "%llu ICMP messages received": "Icmp.InMsgs",
        "%llu ICMP messages failed": "Icmp.OutErrors",
        "%llu ICMP messages sent": "Icmp.OutMsgs",
    },
    "Icmp output histogram": {
        "address mask replies: %llu": "Icmp.OutAddrMaskReps",
        "address mask requests: %llu": "Icmp.OutAddrMasks",
        "destination unreachable: %llu": "Icmp.OutDestUnreachs",
        "echo replies: %llu": "Icmp.OutEchoReps",
        "echo requests: %llu": "Icmp.OutEchos",
        "wrong parameters: %llu": "Icmp.OutParmProbs",
        "redirect: %llu": "Icmp.OutRedirects",
        "source quench: %llu": "Icmp.OutSrcQuenchs",
        "time exceeded: %llu": "Icmp.OutTimeExcds",
        "timestamp replies: %llu": "Icmp.OutTimestampReps",
        "timestamp requests: %llu": "Icmp.OutTimestamps",
    },
    "Icmp6 input histogram": {
        "destination unreachable: %llu": "Icmp6.InDestUnreachs",
        "echo replies: %llu": "Icmp6.InEchoReplies",
        "echo requests: %llu": "Icmp6.InEchos",
        "group member queries: %llu": "Icmp6.InGroupMembQueries",
        "group member reductions: %llu": "Icmp6.InGroupMembReductions",
        "group member responses: %llu": "Icmp6.InGroupMembResponses",
        "neighbour advertisement: %llu": "Icmp6.InNeighborAdvertisements",
        "neighbour solicits: %llu": "Icmp6.InNeighborSolicits",
        "parameter problem: %llu": "Icmp6.InParmProblems",
        "packets too big: %llu": "Icmp6.InPktTooBigs",
        "redirects: %llu": "Icmp6.InRedirects",
        "router advertisement: %llu": "Icmp6.InRouterAdvertisements",
        "router solicits: %llu": "Icmp6.InRouterSolicits",
        "received ICMPv6 time exceeded: %llu": "Icmp6.InTimeExcds",
    },
    "Icmp6": {
        "%llu input ICMP message failed": "Icmp6.InErrors",
        "%llu ICMP messages received": "Icmp6.InMsgs",
        "%llu ICMP messages sent": "Icmp6.OutMsgs",
    },
    "Icmp6 output histogram": {
        "destination unreachable: %llu": "Icmp6.OutDestUnreachs",
        "echo replies: %llu": "Icmp6.OutEchoReplies",
        "echo requests: %llu": "Icmp6.OutEchos",
        "group member queries: %llu": "Icmp6.OutGroupMembQueries",
        "group member reductions: %llu": "Icmp6.OutGroupMembReductions",
        "group member responses: %llu": "Icmp6.OutGroupMembResponses",
        "neighbor advertisements: %llu": "Icmp6.OutNeighborAdvertisements",
        "neighbor solicits: %llu": "Icmp6.OutNeighborSolicits",
        "parameter problem: %llu": "Icmp6.OutParmProblems",
        "packets too big: %llu": "Icmp6.OutPktTooBigs",
        "redirects: %llu": "Icmp6.OutRedirects",
        "router advertisement: %llu": "Icmp6.OutRouterAdvertisements",
        "router solicits: %llu": "Icmp6.OutRouterSolicits",
        "sent ICMPv6 time exceeded: %llu": "Icmp6.OutTimeExcds",
    },
    "Tcp": {
        "%llu active connection openings": "Tcp.ActiveOpens",
        "%llu failed connection attempts": "Tcp.AttemptFails",
        "%llu connections established": "Tcp.CurrEstab",
        "%llu connection resets received": "Tcp.EstabResets",
        "%llu bad segments received": "Tcp.InErrs",
        "%llu segments received": "Tcp.InSegs",
        "%llu resets sent": "Tcp.OutRsts",
        "%llu segments sent out": "Tcp.OutSegs",
        "%llu passive connection openings": "Tcp.PassiveOpens",
        "%llu segments retransmitted": "Tcp.RetransSegs",
        "RTO algorithm is %s": "Tcp.RtoAlgorithm",
    },
    "Udp": {
        "%llu packets with invalid checksum": "Udp.InCsumErrors",
        "%llu packets received": "Udp.InDatagrams",
        "%llu packet receive errors": "Udp.InErrors",
        "%llu packets to unknown port received": "Udp.NoPorts",
        "%llu packets sent": "Udp.OutDatagrams",
        "%llu receive buffer errors": "Udp.RcvbufErrors",
        "%llu send buffer errors": "Udp.SndbufErrors",
    },
    "Udp6": {
        "%llu packets with invalid checksum": "Udp6.InCsumErrors",
        "%llu packets received": "Udp6.InDatagrams",
        "%llu packet receive errors": "Udp6.InErrors",
        "%llu packets to unknown port received": "Udp6.NoPorts",
        "%llu packets sent": "Udp6.OutDatagrams",
        "%llu receive buffer errors": "Udp6.RcvbufErrors",
        "%llu send buffer errors": "Udp6.SndbufErrors",
    },
    "TcpExt": {
        "%llu delayed acks further delayed because of locked socket": "TcpExt.DelayedACKLocked",
        "Quick ack mode was activated %llu times": "TcpExt.DelayedACKLost",
        "%llu delayed acks sent": "TcpExt.DelayedACKs",
        "%llu resets received for embryonic SYN_RECV sockets": "TcpExt.EmbryonicRsts",
        "%llu SYNs to LISTEN sockets dropped": "TcpExt.ListenDrops",
        "%llu times the listen queue of a socket overflowed": "TcpExt.ListenOverflows",
        "%llu ICMP packets dropped because socket was locked": "TcpExt.LockDroppedIcmps",
        "%llu packets dropped from out-of-order queue because of socket buffer overrun": "TcpExt.OfoPruned",
        "%llu ICMP packets dropped because they were out-of-window": "TcpExt.OutOfWindowIcmps",
        "%llu active connections rejected because of time stamp": "TcpExt.PAWSActive",
        "%llu packets rejected in established connections because of timestamp": "TcpExt.PAWSEstab",
        "%llu passive connections rejected because of time stamp": "TcpExt.PAWSPassive",
        "%llu packets pruned from receive queue because of socket buffer overrun": "TcpExt.PruneCalled",
        "%llu packets pruned from receive queue": "TcpExt.RcvPruned",
        "Ran %llu times out of system memory during packet sending": "TcpExt.SockMallocOOM",
        "%llu invalid SYN cookies received": "TcpExt.SyncookiesFailed",
        "%llu SYN cookies received": "TcpExt.SyncookiesRecv",
        "%llu SYN cookies sent": "TcpExt.SyncookiesSent",
        "%llu times unable to send RST due to no memory": "TcpExt.TCPAbortFailed",
        "%llu connections reset due to early user close": "TcpExt.TCPAbortOnClose",
        "%llu connections reset due to unexpected data": "TcpExt.TCPAbortOnData",
        "%llu connections aborted after user close in linger timeout": "TcpExt.TCPAbortOnLinger",
        "%llu connections aborted due to memory pressure": "TcpExt.TCPAbortOnMemory",
        "%llu connections reset due to unexpected SYN": "TcpExt.TCPAbortOnSyn",
        "%llu connections aborted due to timeout": "TcpExt.TCPAbortOnTimeout",
        "%llu bytes directly in process context from backlog": "TcpExt.TCPDirectCopyFromBacklog",
        "%llu bytes directly received in process context from prequeue": "TcpExt.TCPDirectCopyFromPrequeue",
        "%llu DSACKs for out of order packets received": "TcpExt.TCPDSACKOfoRecv",
        "%llu DSACKs sent for out of order packets": "TcpExt.TCPDSACKOfoSent",
        "%llu DSACKs sent for old packets": "TcpExt.TCPDSACKOldSent",
        "%llu DSACKs received": "TcpExt.TCPDSACKRecv",
        "%llu congestion window recovered without slow start using DSACK": "TcpExt.TCPDSackUndo",
        "%llu congestion windows recovered without slow start by DSACK": "TcpExt.TCPDSACKUndo",
        "Detected reordering %llu times using FACK": "TcpExt.TCPFACKReorder",
        "%llu fast retransmits": "TcpExt.TCPFastRetrans",
        "%llu forward retransmits": "TcpExt.TCPForwardRetrans",
        "%llu congestion windows fully recovered without slow start": "TcpExt.TCPFullUndo",
        "%llu predicted acknowledgments": "TcpExt.TCPHPAcks",
        "%llu packet headers predicted": "TcpExt.TCPHPHits",
        "%llu packet headers predicted and directly queued to user": "TcpExt.TCPHPHitsToUser",
        "%llu timeouts in loss state": "TcpExt.TCPLossFailures",
        "%llu TCP data loss events": "TcpExt.TCPLoss",
        "%llu congestion windows recovered without slow start after partial ack": "TcpExt.TCPLossUndo",
        "%llu retransmits lost": "TcpExt.TCPLostRetransmits",
        "TCP ran low on memory %llu times": "TcpExt.TCPMemoryPressures",
        "%llu congestion windows partially recovered using Hoe heuristic": "TcpExt.TCPPartialUndo",
        "%llu packets directly queued to recvmsg prequeue": "TcpExt.TCPPrequeued",
        "%llu packets dropped from prequeue": "TcpExt.TCPPrequeueDropped",
        "%llu acknowledgments not containing data payload received": "TcpExt.TCPPureAcks",
        "%llu packets collapsed in receive queue due to low socket buffer": "TcpExt.TCPRcvCollapsed",
        "%llu timeouts after reno fast retransmit": "TcpExt.TCPRenoFailures",
        "%llu reno fast retransmits failed": "TcpExt.TCPRenoRecoveryFailed",
        "%llu classic Reno fast retransmits failed": "TcpExt.TCPRenoRecoveryFail",
        "%llu times recovered from packet loss due to fast retransmit": "TcpExt.TCPRenoRecovery",
        "Detected reordering %llu times using reno fast retransmit": "TcpExt.TCPRenoReorder",
        "%llu timeouts after SACK recovery": "TcpExt.TCPSackFailures",
        "%llu SACK retransmits failed": "TcpExt.TCPSackRecoveryFail",
        "%llu times recovered from packet loss by selective acknowledgements": "TcpExt.TCPSackRecovery",
        "%llu bad SACK blocks received": "TcpExt.TCPSACKReneging",
        "Detected reordering %llu times using SACK": "TcpExt.TCPSACKReorder",
        "%llu times receiver scheduled too late for direct processing": "TcpExt.TCPSchedulerFailed",
        "%llu retransmits in slow start": "TcpExt.TCPSlowStartRetrans",
        "%llu other TCP timeouts": "TcpExt.TCPTimeouts",
        "Detected reordering %llu times using time stamp": "TcpExt.TCPTSReorder",
        "%llu TCP sockets finished time wait in slow timer": "TcpExt.TWKilled",
        "%llu TCP sockets finished time wait in fast timer": "TcpExt.TW",
        "%llu time wait sockets recycled by time stamp": "TcpExt.TWRecycled",
    },
}
