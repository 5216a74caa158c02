# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_tc_text against cases/tc_text.yml, the kernel's tc-testing netem patterns, tcconfig's and blockade's cases."""
from __future__ import annotations

import json
import os
import re
import struct
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netem import NETEM_KEYS, decode_netem_options
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import parse_tc_qdisc_show
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import assert_subset, fixture, read

HERE = os.path.dirname(os.path.abspath(__file__))
UINT32_MAX = 0xFFFFFFFF
HELPERS = {"pct": lambda p: int(round(p / 100.0 * UINT32_MAX)), "ms": lambda x: int(round(x * 1e6)),
           "ticks": lambda x: int(round(x * 1e6 / 64))}


CASES = yaml.safe_load(read(os.path.join(HERE, "cases", "tc_text.yml")))


def value(v: Any) -> Any:
    """YAML value, with pct(P) / ms(X) / ticks(X) helpers evaluated."""
    m = re.match(r"^(pct|ms|ticks)\((.+)\)$", v) if isinstance(v, str) else None
    return HELPERS[m.group(1)](float(m.group(2))) if m else v


def attribute(kind: int, fmt: str, values: List[Any]) -> bytes:
    payload = b"".join(attribute(*a) for a in values) if fmt == "nested" else struct.pack("=" + fmt, *[value(v) for v in values])
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def build(spec: Dict[str, Any]) -> Tuple[bytes, List[int]]:
    """The payload and the byte offsets where it may end (after the qopt and after each attribute)."""
    data = struct.pack("=6I", *[value(v) for v in spec["qopt"]])
    ends = [len(data)]
    for attr in spec["attrs"]:
        data += attribute(*attr)
        ends.append(len(data))
    return data, ends


# ---- the kernel's tc-testing netem cases ----

KERNEL = dict((c["id"], c) for c in json.loads(fixture("tc/kernel_tc_testing/netem_tdc_cases.json"))["cases"])


def test_every_kernel_show_case_is_covered() -> None:
    shown = set(c["id"] for c in KERNEL.values() if c["matchCount"] == "1" and c["verifyCmd"].startswith("$TC qdisc show"))
    assert shown == set(c["id"] for c in CASES["kernel_cases"])


@pytest.mark.parametrize("case", CASES["kernel_cases"], ids=[c["id"] for c in CASES["kernel_cases"]])
def test_kernel_case(case: Dict[str, Any]) -> None:
    assert re.search(KERNEL[case["id"]]["matchPattern"], case["line"]), "not what the kernel test expects tc to print"
    entries = parse_tc_qdisc_show(case["line"] + "\n", interface="dummy1")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["kind"], entry["handle"], entry["root"], entry["parent"], entry["interface"]) == ("netem", "1:", True, "root", "dummy1")
    assert_subset(entry["options"], case["expect"])
    raw = build(case["payload"])[0]
    assert decode_netem_options(raw) == entry["options"]


@pytest.mark.parametrize("case", CASES["kernel_cases"] + CASES["decode_cases"],
                         ids=[c["id"] for c in CASES["kernel_cases"] + CASES["decode_cases"]])
def test_truncated_payload(case: Dict[str, Any]) -> None:
    """Cut anywhere but at an attribute boundary, a payload is rejected with ParseError."""
    raw, ends = build(case["payload"])
    for cut in range(len(raw)):
        if cut in ends:
            assert isinstance(decode_netem_options(raw[:cut]), dict)
        else:
            with pytest.raises(ParseError):
                decode_netem_options(raw[:cut])


@pytest.mark.parametrize("case", CASES["decode_cases"], ids=[c["id"] for c in CASES["decode_cases"]])
def test_decode(case: Dict[str, Any]) -> None:
    raw = build(case["payload"])[0]
    for data in (raw, bytearray(raw), memoryview(raw)):
        options = decode_netem_options(data)
        assert set(options) == set(NETEM_KEYS)
        assert_subset(options, case["expect"])


def test_decode_byte_order() -> None:
    little = struct.pack("<6I", 0, 1000, 1288490189, 0, 0, 0) + struct.pack("<HHq", 12, 10, 5000000)
    big = struct.pack(">6I", 0, 1000, 1288490189, 0, 0, 0) + struct.pack(">HHq", 12, 10, 5000000)
    for raw, order in ((little, "<"), (big, ">")):
        assert_subset(decode_netem_options(raw, byteorder=order), {"limit": 1000, "loss": 30.0, "delay_ms": 5.0})
    with pytest.raises(ParseError):
        decode_netem_options(little, byteorder="!")


@pytest.mark.parametrize("case", CASES["decode_errors"], ids=[c["id"] for c in CASES["decode_errors"]])
def test_decode_error(case: Dict[str, Any]) -> None:
    with pytest.raises(ParseError) as info:
        decode_netem_options(case["text"] if "text" in case else bytes(case["raw"]), source="qdisc 8001:")
    assert case["error"] in str(info.value) and info.value.source == "qdisc 8001:"


def test_decode_attribute_overrun() -> None:
    raw = struct.pack("=6I", 0, 1000, 0, 0, 0, 0) + struct.pack("=HH", 40, 10) + b"\0" * 8
    with pytest.raises(ParseError, match="attribute 10 at byte 24 claims 40 bytes, 12 left"):
        decode_netem_options(raw)
    short = struct.pack("=6I", 0, 1000, 0, 0, 0, 0) + struct.pack("=HHI", 8, 10, 0)
    with pytest.raises(ParseError, match="attribute 10 is 4 bytes, 8 expected"):
        decode_netem_options(short)


# ---- tc qdisc show text ----

@pytest.mark.parametrize("case", CASES["show_cases"], ids=[c["id"] for c in CASES["show_cases"]])
def test_show(case: Dict[str, Any]) -> None:
    assert_subset(parse_tc_qdisc_show(case["text"]), case["expect"])


@pytest.mark.parametrize("case", CASES["show_errors"], ids=[c["id"] for c in CASES["show_errors"]])
def test_show_error(case: Dict[str, Any]) -> None:
    with pytest.raises(ParseError) as info:
        parse_tc_qdisc_show(case["text"], source="sos_commands/networking/tc_-s_qdisc_show")
    assert case["error"] in str(info.value)


TCCONFIG = json.loads(fixture("tc/tcconfig/expected.json"))["cases"]
TCCONFIG_QDISC = sorted(name for name in TCCONFIG if name.startswith("TcQdiscParser"))


@pytest.mark.parametrize("name", TCCONFIG_QDISC)
def test_tcconfig_qdisc_case(name: str) -> None:
    """tcconfig's rows: one per netem qdisc. Its parser also copies the htb root's direct_qlen onto the
    first netem row (a tcconfig artefact, see the corpus README): we keep it on the htb entry it belongs to."""
    case, numbers = TCCONFIG[name], CASES["tcconfig_values"]
    device = case["command"].split()[-1]
    entries = parse_tc_qdisc_show(fixture("tc/tcconfig/" + case["input_file"]), interface=device)
    netem = [e for e in entries if e["kind"] == "netem"]
    assert len(netem) == len(case["expected"])
    for entry, row in zip(netem, case["expected"]):
        options = entry["options"]
        assert (entry["interface"], entry["handle"], entry["parent"], options["limit"]) == \
            (row["device"], row["handle"], row["parent"], row["limit"])
        assert options["delay_ms"] == (numbers[row["delay"]] if "delay" in row else None)
        assert options["jitter_ms"] == (numbers[row["delay-distro"]] if "delay-distro" in row else None)
        assert options["loss"] == (numbers[row["loss"]] if "loss" in row else None)
        assert [options[k] for k in ("duplicate", "corrupt", "reorder", "rate_bps", "slot")] == [None] * 5
        assert "direct_qlen" not in options
        if "direct_qlen" in row:
            htb = [e for e in entries if e["kind"] == "htb" and entry["parent"].startswith(e["handle"])]
            assert htb[0]["options"]["direct_qlen"] == row["direct_qlen"]


BLOCKADE = json.loads(fixture("tc/blockade/expected.json"))


@pytest.mark.parametrize("name", sorted(k for k in BLOCKADE if not k.startswith("_")))
def test_blockade_states(name: str) -> None:
    """blockade classifies NORMAL (no netem), SLOW (netem delay), FLAKY (netem loss)."""
    entries = parse_tc_qdisc_show(fixture("tc/blockade/" + name), interface="eth0")
    netem = [e["options"] for e in entries if e["kind"] == "netem"]
    state = BLOCKADE[name]["expected_state"]
    if state == "NORMAL":
        assert netem == [] and entries[0]["kind"] == "pfifo_fast"
        return
    assert len(netem) == 1
    if state == "SLOW":
        assert (netem[0]["delay_ms"], netem[0]["loss"]) == (50.0, None)
        assert BLOCKADE[name]["netem"] == {"delay": "50.0ms"}
    else:
        assert state.startswith("FLAKY")
        assert (netem[0]["loss"], netem[0]["delay_ms"]) == (50.0, None)
        assert BLOCKADE[name]["netem"] == {"loss": "50%"}
