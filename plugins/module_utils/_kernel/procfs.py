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
