# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every drop counter mapped: each counter name of the kernels saved in fixtures/counters (names_<kernel>.txt, see
SOURCES.md) is, in _counters.COUNTER_MAP, either a finding id or "not a drop" with the reason."""
from __future__ import annotations

import glob
import os
import re
from typing import List, Tuple

import pytest

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import counters as _counters

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import procfs as _procfs

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = sorted(glob.glob(os.path.join(HERE, "..", "..", "fixtures", "counters", "names_*.txt")))


def names(path: str) -> List[Tuple[str, str]]:
    with open(path) as f:
        return [tuple(line.split(None, 1)) for line in f.read().splitlines() if line.strip() and not line.startswith("#")]  # type: ignore


def test_the_saved_kernels() -> None:
    """This machine's kernel (6.18) and the VM lab's (Debian's 6.1): the issue's floor."""
    assert {"names_6.18.txt", "names_6.1.txt"} <= set(os.path.basename(p) for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_every_counter_name_is_a_finding_or_not_a_drop(path: str) -> None:
    rows = names(path)
    assert len(rows) > 400
    unmapped = ["%s %s" % (src, name) for src, name in rows if _counters.counter_mapping(src, name) is None]
    assert unmapped == [], "add these counters to COUNTER_MAP (a finding id, or None with why): %s" % unmapped


def test_every_mapped_finding_exists_and_every_not_a_drop_says_why() -> None:
    for src, pattern, fid, why in _counters.COUNTER_MAP:
        re.compile(pattern)
        assert fid is None or fid in _analyze.THRESHOLDS, fid
        assert why and (fid is not None or why.startswith("not a drop")), (src, pattern)


def test_the_counters_of_the_snmp_findings_map_to_them() -> None:
    """The counters each SNMP finding sums are mapped to that finding (the table and the code agree)."""
    six = dict((v, k) for k, v in _procfs.SNMP6_PREFIXES) if hasattr(_procfs, "SNMP6_PREFIXES") else {}
    for fid, fields, _den, _what, _why, _advice in _counters._SNMP:
        for section, field in fields:
            if section in ("Ip6", "Icmp6", "Udp6", "UdpLite6"):
                got = _counters.counter_mapping("snmp6", section + field)
            else:
                got = _counters.counter_mapping("netstat" if section in ("TcpExt", "IpExt") else "snmp", "%s:%s" % (section, field))
            assert got is not None and got[0] == fid, (fid, section, field, got, six)


def test_docs_show_the_counter_map() -> None:
    with open(os.path.join(HERE, "..", "..", "..", "..", "docs", "drop-reasons.md")) as f:
        assert _counters.counters_markdown() in f.read(), "regenerate the counter table in docs/drop-reasons.md from counters_markdown()"
