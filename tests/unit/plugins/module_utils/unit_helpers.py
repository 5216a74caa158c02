# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the table-driven parser tests share: reading fixtures and comparing a parse with a YAML expectation."""
from __future__ import annotations

import os
from typing import Any

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
