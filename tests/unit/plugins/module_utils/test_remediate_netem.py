# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_remediate_netem against cases/remediate_netem.yml: the netem encoder against iproute2's own requests and as the
inverse of decode_netem_options, tc words that _tc_text parses back, parameters, and the plans on given qdiscs."""
from __future__ import annotations

import os
import struct
from typing import Any, Dict, List

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import netem as rn
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import rtnetlink as _rtnetlink
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import RemediationError
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import HOST
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netem import NETEM_KEYS, decode_netem_options
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import parse_tc_qdisc_show

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "remediate_netem.yml")) as _f:
    CASES = yaml.safe_load(_f)


def full(options: Dict[str, Any]) -> Dict[str, Any]:
    o = dict(NETEM_KEYS)
    o.update(options)
    if o["limit"] is None:
        o["limit"] = 1000  # tc's default, and the encoder's
    if o.get("loss") and not o.get("loss_model"):
        o["loss_model"] = "random"
    if o.get("slot"):
        o["slot"] = dict(dict.fromkeys(("min_delay_ms", "max_delay_ms", "dist_delay_ms", "dist_jitter_ms",
                                        "max_packets", "max_bytes")), **o["slot"])
    return o


def same(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    return rn.same_options(a, b)


# ---- the encoder ----

@pytest.mark.parametrize("case", CASES["iproute2"], ids=[c["tc"] for c in CASES["iproute2"]])
def test_encoder_against_iproute2(case: Dict[str, Any]) -> None:
    wanted = full(case["options"])
    mine = rn.encode_netem_options(wanted)
    theirs = bytes.fromhex(case["payload"])
    assert same(decode_netem_options(mine), wanted) == []
    assert sorted(same(decode_netem_options(theirs), wanted)) == sorted(case.get("iproute2_differs", []))
    if case.get("identical", True):
        assert mine.hex() == case["payload"]


_PCT = st.one_of(st.none(), st.integers(1, 100000000).map(lambda n: n / 1e6))  # 0.000001 .. 100, 6 decimals
_MS = st.integers(1, 10 ** 12).map(lambda ns: ns / 1e6)  # any whole number of ns up to 1000 s


@st.composite
def netem_options(draw: Any) -> Dict[str, Any]:
    o: Dict[str, Any] = {"limit": draw(st.integers(1, 2 ** 32 - 1))}
    if draw(st.booleans()):
        o["delay_ms"] = draw(_MS)
        if draw(st.booleans()):
            o["jitter_ms"] = draw(_MS)
            o["delay_correlation"] = draw(_PCT)
        if draw(st.booleans()):
            o["reorder"] = draw(_PCT.filter(lambda p: p is not None))
            o["reorder_correlation"] = draw(_PCT)
            o["gap"] = draw(st.integers(1, 1000))
    model = draw(st.sampled_from(["random", "state", "gemodel", None]))
    if model == "random":
        o["loss"] = draw(_PCT.filter(lambda p: p is not None))
        o["loss_correlation"] = draw(_PCT)
        o["ecn"] = draw(st.booleans())
    elif model == "state":
        o["loss_model"] = "state"
        o["loss_state"] = dict((k, draw(_PCT) or 0.0) for k in ("p13", "p31", "p32", "p23", "p14"))
    elif model == "gemodel":
        o["loss_model"] = "gemodel"
        o["loss_gemodel"] = dict((k, draw(_PCT) or 0.0) for k in ("p", "r", "1-h", "1-k"))
    for key in ("duplicate", "corrupt"):
        if draw(st.booleans()):
            o[key] = draw(_PCT.filter(lambda p: p is not None))
            o[key + "_correlation"] = draw(_PCT)
    if draw(st.booleans()):
        o["rate_bps"] = draw(st.integers(1, 2 ** 40)) * 8
        o["packet_overhead"] = draw(st.one_of(st.none(), st.integers(-1000, 1000).filter(bool)))
        o["cell_size"] = draw(st.one_of(st.none(), st.integers(1, 10000)))
        o["cell_overhead"] = draw(st.one_of(st.none(), st.integers(-100, 100).filter(bool)))
    if draw(st.booleans()):
        lo = draw(_MS)
        o["slot"] = {"min_delay_ms": lo, "max_delay_ms": lo + draw(_MS),
                     "max_packets": draw(st.one_of(st.none(), st.integers(1, 2 ** 31 - 2))),
                     "max_bytes": draw(st.one_of(st.none(), st.integers(1, 2 ** 31 - 2)))}
    if draw(st.booleans()):
        o["seed"] = draw(st.integers(0, 2 ** 64 - 1))
    return full(o)


@settings(max_examples=300, deadline=None)
@given(netem_options())
def test_decode_inverts_encode(options: Dict[str, Any]) -> None:
    assert same(decode_netem_options(rn.encode_netem_options(options)), options) == []


@settings(max_examples=200, deadline=None)
@given(netem_options())
def test_tc_words_parse_back(options: Dict[str, Any]) -> None:
    """The words in diffs and restore commands are what _tc_text reads from `tc qdisc show`: same options."""
    decoded = decode_netem_options(rn.encode_netem_options(options))
    row = {"interface": "eth0", "kind": "netem", "handle": "8001:", "parent": "root", "root": True, "options": decoded}
    parsed = parse_tc_qdisc_show(rn.qdisc_line(row))[0]
    assert parsed["interface"] == "eth0" and parsed["handle"] == "8001:" and parsed["root"]
    differ = same(parsed["options"], decoded)
    # tc words carry times to the microsecond and no slot distribution table; the rest is exact
    assert [k for k in differ if k not in ("delay_ms", "jitter_ms", "slot")] == []


@pytest.mark.parametrize("value,ms", CASES["times"])
def test_times(value: Any, ms: float) -> None:
    assert rn.parse_time_ms(value, "delay") == pytest.approx(ms)


@pytest.mark.parametrize("value,bps", CASES["rates"])
def test_rates(value: Any, bps: int) -> None:
    assert rn.parse_rate_bps(value) == bps


@pytest.mark.parametrize("params,needle", CASES["bad_values"], ids=[str(c[0]) for c in CASES["bad_values"]])
def test_bad_values(params: Dict[str, Any], needle: str) -> None:
    with pytest.raises(RemediationError) as err:
        rn.validate(params)
    assert needle in str(err.value)


def test_present_options_are_tc_defaults() -> None:
    v = rn.validate({"state": "present", "interface": "eth0", "loss": 30})
    assert v["options"]["limit"] == 1000 and v["options"]["loss"] == 30 and v["options"]["loss_model"] == "random"
    v = rn.validate({"state": "present", "interface": "eth0", "delay": "10ms", "reorder": 25})
    assert v["options"]["gap"] == 1  # as tc sets it
    assert rn.encode_netem_options(v["options"]).hex() == [c for c in CASES["iproute2"] if c["tc"] == "delay 10ms reorder 25%"][0]["payload"]


@pytest.mark.parametrize("match,options,selected", CASES["matches"], ids=[str(c[0]) + str(c[1]) for c in CASES["matches"]])
def test_matches(match: Dict[str, Any], options: Dict[str, Any], selected: bool) -> None:
    assert rn.matches(full(options), rn.match_bounds(match)) is selected


# ---- plans, on qdiscs given as _netlink reports them ----

def qdisc(iface: str, kind: str, handle: str, parent: str, options: Dict[str, Any], ifindex: int = 2) -> Dict[str, Any]:
    return {"interface": iface, "ifindex": ifindex, "kind": kind, "handle": handle, "parent": parent,
            "root": parent == "root", "options": options, "stats": {"drops": 3}}


NETEM30 = decode_netem_options(rn.encode_netem_options(full({"loss": 30})))
NETEM_DELAY = decode_netem_options(rn.encode_netem_options(full({"delay_ms": 100})))
ROWS = [
    qdisc("eth0", "netem", "8001:", "root", NETEM30),
    qdisc("eth0", "tbf", "10:", "8001:1", {"rate_bps": 8000}),
    qdisc("eth1", "htb", "1:", "root", {"raw_length": 40}, 3),
    qdisc("eth1", "netem", "20:", "1:10", NETEM_DELAY, 3),
    qdisc("eth1", "netem", "30:", "1:20", NETEM30, 3),
    qdisc("eth2", "fq_codel", "0:", "root", {"raw_length": 60}, 4),
]


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    """_read_qdiscs answers ROWS (or what a test sets), tc_request is recorded instead of sent."""
    sent: List[Any] = []
    state = {"rows": list(ROWS)}

    def read(interfaces: Any) -> List[Dict[str, Any]]:
        return [r for r in state["rows"] if not interfaces or r["interface"] in interfaces]

    def request(msg_type: int, flags: int, ifindex: int, handle: int, parent: int, kind: Any = None,
                options: Any = None, what: str = "") -> None:
        sent.append((msg_type, flags, ifindex, handle, parent, kind, options))
    monkeypatch.setattr(rn, "_read_qdiscs", read)
    monkeypatch.setattr(rn, "tc_request", request)
    monkeypatch.setattr(rn, "default_qdisc", lambda: "fq_codel")
    sent.append(state)
    return sent


def test_absent_removes_every_netem_and_what_is_below(kernel: List[Any]) -> None:
    plan = rn.plan_absent(HOST, rn.validate({"state": "absent"}))
    assert [(r["interface"], r["handle"], r.get("reason", "")[:5]) for r in plan.removed] == \
        [("eth0", "8001:", ""), ("eth0", "10:", "below"), ("eth1", "20:", ""), ("eth1", "30:", "")]
    assert any("tbf 10: on eth0 goes with the netem above it" in w for w in plan.warnings)
    for step in plan.steps:
        step.apply()
    requests = kernel[1:]
    # the root netem is deleted; a child netem is replaced by the default qdisc (deleting it could leave noop)
    assert [(t, i, h, p, k) for t, _f, i, h, p, k, _o in requests] == [
        (rn.RTM_DELQDISC, 2, 0x80010000, rn.TC_H_ROOT, None), (rn.RTM_NEWQDISC, 3, 0, 0x10010, "fq_codel"),
        (rn.RTM_NEWQDISC, 3, 0, 0x10020, "fq_codel")]
    assert all(req[1] == rn.NLM_F_CREATE | rn.NLM_F_REPLACE | rn.NLM_F_EXCL for req in requests if req[0] == rn.RTM_NEWQDISC)
    assert [(a["interface"], a["kind"], a["parent"]) for a in plan.added] == [
        ("eth1", "fq_codel", "1:10"), ("eth1", "fq_codel", "1:20")]
    diff = plan.diffs[0]
    assert "qdisc netem 8001: dev eth0 root limit 1000 loss 30%" in diff["before"]
    assert "netem" not in diff["after"] and "qdisc htb 1: dev eth1 root" in diff["after"]
    assert "qdisc fq_codel (new) dev eth1 parent 1:10" in diff["after"]
    assert "qdisc fq_codel 0: dev eth2" not in diff["before"]  # only the interfaces that change
    backup = plan.backup[0].content
    assert "tc qdisc replace dev eth0 root handle 8001: netem limit 1000 loss 30%" in backup
    assert "tc qdisc replace dev eth1 parent 1:10 handle 20: netem limit 1000 delay 100ms" in backup
    assert "# also gone with a netem above it, not set again by this file: qdisc tbf 10: dev eth0 parent 8001:1" in backup


def test_absent_with_match_and_parent(kernel: List[Any]) -> None:
    plan = rn.plan_absent(HOST, rn.validate({"state": "absent", "match": {"loss": {"min": 1}}}))
    assert [r["handle"] for r in plan.removed if "reason" not in r] == ["8001:", "30:"]
    plan = rn.plan_absent(HOST, rn.validate({"state": "absent", "parent": "child"}))
    assert [r["handle"] for r in plan.removed] == ["20:", "30:"]
    plan = rn.plan_absent(HOST, rn.validate({"state": "absent", "interface": "eth2"}))
    assert not plan.changed and plan.removed == []


def test_present_is_idempotent_and_replaces_otherwise(kernel: List[Any]) -> None:
    plan = rn.plan_present(HOST, rn.validate({"state": "present", "interface": "eth0", "loss": 30}))
    assert not plan.changed
    plan = rn.plan_present(HOST, rn.validate({"state": "present", "interface": "eth0", "loss": 20}))
    assert plan.changed and [r["handle"] for r in plan.removed] == ["8001:", "10:"]
    plan.steps[0].apply()
    # the old netem goes first (a kernel refuses a duplicating netem beside another), then the new one with a
    # handle no qdisc of eth0 uses (kernel 6.1 refuses to replace an existing netem under handle 0)
    assert kernel[-2][:5] == (rn.RTM_DELQDISC, 0, 2, 0x80010000, rn.TC_H_ROOT)
    msg_type, flags, ifindex, handle, parent, kind, options = kernel[-1]
    assert (msg_type, ifindex, handle, parent, kind) == (rn.RTM_NEWQDISC, 2, 0x10000000, rn.TC_H_ROOT, "netem")
    assert flags == rn.NLM_F_CREATE | rn.NLM_F_REPLACE | rn.NLM_F_EXCL
    assert decode_netem_options(options)["loss"] == 20
    assert "tc qdisc replace dev eth0 root handle 8001: netem limit 1000 loss 30%" in plan.backup[0].content
    plan = rn.plan_present(HOST, rn.validate({"state": "present", "interface": "eth2", "loss": 20}))
    assert plan.changed  # the kernel's default qdisc (handle 0:) may be replaced
    assert "tc qdisc del dev eth2 root" in plan.backup[0].content


def test_present_refuses_a_configured_root_without_force(kernel: List[Any]) -> None:
    with pytest.raises(RemediationError) as err:
        rn.plan_present(HOST, rn.validate({"state": "present", "interface": "eth1", "loss": 1}))
    assert "root qdisc of eth1 is htb 1:" in str(err.value)
    plan = rn.plan_present(HOST, rn.validate({"state": "present", "interface": "eth1", "loss": 1, "force": True}))
    assert [r["handle"] for r in plan.removed] == ["1:", "20:", "30:"]


def test_present_in_check_mode_on_a_kernel_without_netem(kernel: List[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rn, "netem_support", lambda: False)
    with pytest.raises(RemediationError) as err:
        rn.plan_present(HOST, rn.validate({"state": "present", "interface": "eth2", "loss": 20}), check_mode=True)
    assert str(err.value).startswith("the kernel has no sch_netem")


def test_extended_ack_message() -> None:
    """NLMSG_ERROR with NLM_F_CAPPED|NLM_F_ACK_TLVS: errno, the echoed header, then NLMSGERR_ATTR_MSG."""
    text = b"Specified qdisc kind is unknown.\0"
    tlv = struct.pack("=HH", 4 + len(text), 1) + text + b"\0" * ((4 - len(text) % 4) % 4)
    body = struct.pack("=i", -2) + struct.pack("=IHHII", 52, 36, 0x605, 1, 0) + tlv
    msg = struct.pack("=IHHII", 16 + len(body), 2, _rtnetlink.NLM_F_CAPPED | _rtnetlink.NLM_F_ACK_TLVS, 1, 0) + body
    assert _rtnetlink.ext_ack(msg, 0, len(msg), _rtnetlink.NLM_F_CAPPED | _rtnetlink.NLM_F_ACK_TLVS) == "Specified qdisc kind is unknown."
    assert _rtnetlink.ext_ack(msg, 0, len(msg), 0) == ""


def test_handles() -> None:
    assert rn.parse_handle("root") == rn.TC_H_ROOT
    assert rn.parse_handle("8001:") == 0x80010000
    assert rn.parse_handle("1:10") == 0x10010
    assert rn.parse_handle("0:") == 0
