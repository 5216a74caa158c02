# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_netlink's decoders against cases/netlink.yml: links, qdiscs and the splitting of a dump's datagrams."""
from __future__ import annotations

import os
import struct
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import rtnetlink as _netlink
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import tc as _tc
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import (
    assert_subset, message, read)

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = yaml.safe_load(read(os.path.join(HERE, "cases", "netlink.yml")))


@pytest.mark.parametrize("case", CASES["links"], ids=[c["id"] for c in CASES["links"]])
def test_decode_link(case: Dict[str, Any]) -> None:
    header = struct.pack("=BxHiII", 0, 1, case["header"]["ifindex"], 0, 0)
    name, row = _netlink.decode_link(message(16, header, case["attrs"]))
    assert name == case["expect"]["name"]
    assert_subset(row, case["expect"]["row"])
    assert set(row["stats"]) <= set(_netlink.LINK_STATS)


@pytest.mark.parametrize("case", CASES["qdiscs"], ids=[c["id"] for c in CASES["qdiscs"]])
def test_decode_qdisc(case: Dict[str, Any]) -> None:
    h = case["header"]
    header = struct.pack("=B3xiIII", 0, h["ifindex"], h["handle"], h["parent"], 1)
    row = _tc.decode_qdisc(message(36, header, case["attrs"]), dict((int(k), v) for k, v in case["names"].items()))
    expect = dict(case["expect"])
    if expect.get("options", {}).get("decode_error") == "*":
        assert row["options"]["decode_error"], row
        expect["options"] = {}
    assert_subset(row, expect)
    assert set(row["stats"]) == set(_tc.STATS_KEYS)
    assert set(row) == set(_tc.ROW_KEYS)


def datagram(messages: List[List[Any]]) -> bytes:
    out = b""
    for msg_type, payload in messages:
        body = struct.pack("=i", -payload["errno"]) + b"\0" * 16 if isinstance(payload, dict) else b"\1" * payload
        out += struct.pack("=IHHII", _netlink.NLMSG_HDRLEN + len(body), msg_type, 2, 1, 0) + body
    return out


@pytest.mark.parametrize("case", CASES["split"], ids=[c["id"] for c in CASES["split"]])
def test_split_messages(case: Dict[str, Any]) -> None:
    data = datagram(case["messages"])
    if "errno" in case["expect"]:
        with pytest.raises(OSError) as err:
            _netlink.split_messages(data)
        assert err.value.errno == case["expect"]["errno"]
        return
    messages, done = _netlink.split_messages(data)
    assert (len(messages), done) == (case["expect"]["count"], case["expect"]["done"])
    assert b"".join(messages) == data[:sum(len(m) for m in messages)]


@pytest.mark.parametrize("value, text", [(0xFFFFFFFF, "root"), (0xFFFFFFF1, "ingress"), (0x10010, "1:10"),
                                         (0x80010000, "8001:"), (0, "0:")])
def test_format_handle(value: int, text: str) -> None:
    assert _netlink.format_handle(value) == text
