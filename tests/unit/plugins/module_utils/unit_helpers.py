# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the table-driven tests share: reading fixtures, comparing a result with a YAML expectation, and building
netlink messages the way the kernel lays them out (host byte order)."""
from __future__ import annotations

import os
import struct
from typing import Any, List

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "fixtures")


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def fixture(rel: str) -> str:
    return read(os.path.join(FIXTURES, rel))


def assert_subset(actual: Any, expected: Any, path: str = "") -> None:
    """Every key/element of ``expected`` is in ``actual`` with an equal value (floats within 1e-9 or 1e-12 relative)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, "%s.%s missing" % (path, key)
            assert_subset(actual[key], value, "%s.%s" % (path, key))
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), "%s: %r" % (path, actual)
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_subset(a, e, "%s[%d]" % (path, i))
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-9), path
    else:
        assert actual == expected, "%s: %r != %r" % (path, actual, expected)


NLMSG_HDRLEN = 16


def attribute(kind: int, fmt: str, values: Any) -> bytes:
    """One netlink attribute (struct nlattr, padded to 4 bytes). ``fmt``: "nested" (``values`` are attributes),
    "s" (a NUL-terminated string), "raw" (``values`` taken as the whole attribute, latin-1), "bytes" (``values`` is the
    payload) or a struct format applied to the list ``values``."""
    if fmt == "nested":
        payload = b"".join(attribute(*a) for a in values)
    elif fmt == "s":
        payload = values.encode() + b"\0"
    elif fmt == "raw":
        return values.encode("latin-1")
    elif fmt == "bytes":
        payload = bytes(values)
    else:
        payload = struct.pack("=" + fmt, *values)
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def message(msg_type: int, header: bytes, attrs: List[List[Any]], flags: int = 2, seq: int = 1) -> bytes:
    """One netlink message: nlmsghdr, the family's ``header``, then ``attrs`` ([kind, fmt, values] each)."""
    body = header + b"".join(attribute(*a) for a in attrs)
    return struct.pack("=IHHII", NLMSG_HDRLEN + len(body), msg_type, flags, seq, 0) + body
