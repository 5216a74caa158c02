# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one netem option table against cases/netem_table.yml: each form of the options, and back."""
from __future__ import annotations

import os
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netem
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import read

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = yaml.safe_load(read(os.path.join(HERE, "cases", "netem_table.yml")))
UNITS = {"time_us": netem.time_ms, "time_ms": lambda t: netem.time_ms(t, bare="ms"),
         "rate": netem.rate_bps, "rate_bare": lambda t: netem.rate_bps(t, bare=True),
         "percent": netem.percent, "percent_bare": lambda t: netem.percent(t, sign=False)}


def words_of(text: str) -> netem.Words:
    return netem.Words(text.split(), "case", 1)


@pytest.mark.parametrize("case", CASES["options"], ids=[c["id"] for c in CASES["options"]])
def test_every_form_of_the_options(case: Dict[str, Any]) -> None:
    options = dict(netem.NETEM_KEYS, **case["options"])
    assert " ".join(netem.words(options)) == case["words"]
    assert " ".join(netem.words(options, show=True)) == case["show"]
    assert netem.human(options) == case["human"]
    assert netem.lossy(options) is case["lossy"]
    decoded = netem.decode_netem_options(netem.encode_netem_options(options))
    assert netem.parse_words(words_of(case["show"])) == decoded
    assert " ".join(netem.words(decoded, show=True)) == case["show"]
    for key, value in case["options"].items():
        if isinstance(value, dict):  # slot, loss models: the keys given, the others off
            assert dict((k, decoded[key][k]) for k in value) == pytest.approx(value), key
            assert all(decoded[key][k] is None for k in set(decoded[key]) - set(value)), key
        else:
            assert decoded[key] == (pytest.approx(value) if isinstance(value, float) else value), key


def test_every_key_belongs_to_one_entry() -> None:
    owners: List[str] = [key for opt in netem.OPTIONS for key in opt.keys]
    assert len(owners) == len(set(owners)) and set(owners) | {"unparsed"} == set(netem.NETEM_KEYS)


@pytest.mark.parametrize("text,form,expected", CASES["units"], ids=["%s-%s" % (c[0].strip(), c[1]) for c in CASES["units"]])
def test_units(text: str, form: str, expected: Any) -> None:
    value = UNITS[form](text)
    assert value == (pytest.approx(expected) if isinstance(expected, float) else expected)
