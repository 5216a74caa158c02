# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnose action's input checks, against cases_diagnose.yml."""
from __future__ import annotations

import os
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.action.diagnose import (
    carry_drop_reasons, check_containers, check_probe, hold_seconds, probe_args)

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases_diagnose.yml")) as _f:
    CASES: Dict[str, Any] = yaml.safe_load(_f)


@pytest.mark.parametrize("given,expected", CASES["containers"]["ok"])
def test_containers_accepted(given: List[str], expected: List[str]) -> None:
    assert check_containers(given) == expected


@pytest.mark.parametrize("given,message", CASES["containers"]["error"])
def test_containers_refused(given: List[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_containers(given)


@pytest.mark.parametrize("given,expected", CASES["probes"]["ok"])
def test_probe_accepted_with_defaults(given: Dict[str, Any], expected: Dict[str, Any]) -> None:
    assert check_probe(given) == expected


@pytest.mark.parametrize("given,message", CASES["probes"]["error"])
def test_probe_refused(given: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        check_probe(given)
    assert message in str(err.value)


@pytest.mark.parametrize("given,expected", CASES["probe_args"])
def test_probe_args_leave_the_labels_out(given: Dict[str, Any], expected: Dict[str, Any]) -> None:
    assert probe_args(given) == expected


@pytest.mark.parametrize("interval,probes,expected", CASES["hold_seconds"])
def test_hold_covers_the_interval_and_the_probes(interval: float, probes: List[Dict[str, Any]], expected: float) -> None:
    assert hold_seconds(interval, probes) == pytest.approx(expected)


@pytest.mark.parametrize("case", CASES["carry_drop_reasons"])
def test_a_failed_hold_carries_its_reason_into_the_second_snapshot(case: Dict[str, Any]) -> None:
    assert carry_drop_reasons(case["before"], case["after"]) == case["expected"]
