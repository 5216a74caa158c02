# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill table (roles/inject/vars/drills.yml): every cause of the drop-cause catalog has a row, every row is
complete and names findings the analyzer has, the rows the inject role offers fit it, and docs/drops.md shows the
matrix rendered from the table (``python tests/unit/test_drill_table.py`` rewrites it)."""
from __future__ import annotations

import os
import re
import string
import sys
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(ROOT, "roles", "inject", "vars", "drills.yml")
DOC = os.path.join(ROOT, "docs", "drops.md")
BEGIN = "<!-- drill matrix: rendered from roles/inject/vars/drills.yml by tests/unit/test_drill_table.py -->"
END = "<!-- end of the drill matrix -->"
# the catalog's 31 causes, by their numbers in /work/shared/notes/drop-causes.md
CATALOG = (1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 15, 17, 18, 19, 20, 22, 23, 24, 26, 27, 28, 29, 30, 31, 32, 33, 34,
           36, 37)
TOPOLOGY = {"py", "dir", "life", "iface", "a_if", "a_ip", "b_if", "b_ip", "b_mac", "bc_if", "b_ip_c", "c_if", "c_ip",
            "absent_ip"}
ROLE_PLACEHOLDERS = {"py", "dir", "life", "iface"}
TOOLS = (("nettrace", "nettrace"), ("retis_pwru", "retis / pwru"), ("dropwatch", "dropwatch"), ("netdata", "Netdata"),
         ("node_exporter", "node_exporter"))


def load() -> List[Dict[str, Any]]:
    with open(TABLE) as f:
        return yaml.safe_load(f)["__packetloss_inject_drills"]


DRILLS = load()


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _where(d: Dict[str, Any]) -> str:
    if d["where"] == "netns":
        return "netns"
    if d["where"] == "vm":
        return ("VM: " + d["why"] + ("; drilled by `%s`" % d["vm_test"] if d.get("vm_test") else "; not drilled yet"))
    return "none: " + d["why"]


def _role(d: Dict[str, Any]) -> str:
    role = d.get("role")
    if role == "drill":
        return "`packetloss_inject_drills: [%s]`" % d["id"]
    return "`packetloss_inject_%s`" % role if role else "-"


def matrix_markdown(drills: List[Dict[str, Any]]) -> str:
    """The matrix of docs/drops.md, one row per drill, in the catalog's order."""
    lines = ["| cause | drill | finding at warning or above (and at times) | named by | where | inject role | %s |"
             % " | ".join(title for _key, title in TOOLS), "|---|---|---|---|---|---|%s" % ("---|" * len(TOOLS))]
    for d in sorted(drills, key=lambda d: (d["causes"][0], d["id"])):
        found = ", ".join("`%s`" % f for f in d["expect"]) or "nothing (not a drop)"
        if d.get("may"):
            found += " (%s)" % ", ".join("`%s`" % f for f in d["may"])
        where = _where(d)
        if d.get("target"):
            where += ", on %s" % ("the host" if d["target"] == "host" else "the namespace")
        cause = "%s. %s" % ("+".join(str(c) for c in d["causes"]), d["title"])
        if d.get("note"):
            cause += " (%s)" % d["note"]
        lines.append("| %s | `%s` | %s | %s | %s | %s | %s |" % (
            _cell(cause), d["id"], found, d["signal"], _cell(where), _role(d),
            " | ".join(_cell(d["tools"][k]) for k, _title in TOOLS)))
    return "\n".join(lines) + "\n"


def _placeholders(text: str) -> set:
    return set(part[1] for part in string.Formatter().parse(text) if part[1])


def _steps(d: Dict[str, Any]) -> List[Dict[str, Any]]:
    return (d.get("setup") or []) + (d.get("inject") or []) + (d.get("remove") or []) + ([d["check"]] if d.get("check") else [])


def test_every_catalog_cause_has_a_row_and_every_row_a_catalog_cause() -> None:
    covered = sorted(set(c for d in DRILLS for c in d["causes"]))
    assert covered == sorted(CATALOG)
    assert len(set(d["id"] for d in DRILLS)) == len(DRILLS)


@pytest.mark.parametrize("drill", DRILLS, ids=[d["id"] for d in DRILLS])
def test_a_row_is_complete(drill: Dict[str, Any]) -> None:
    assert drill["where"] in ("netns", "vm", "none")
    assert drill["signal"] in ("counter", "reason", "both")
    assert sorted(drill["tools"]) == sorted(k for k, _title in TOOLS)
    for fid in drill["expect"] + (drill.get("may") or []):
        assert fid in _analyze.FINDING_IDS, fid
    if drill["where"] == "netns" or (drill["where"] == "vm" and drill.get("vm_test") and not drill.get("role")):
        # drilled from the table's commands: on this machine, or in the same topology inside the VM
        assert drill["target"] in ("a", "b", "c", "host") and drill.get("traffic"), drill["id"]
    if drill["where"] == "netns":
        assert "why" not in drill
    else:
        assert drill["why"], drill["id"]
        assert drill["where"] == "vm" or not drill.get("vm_test")
    assert set(drill.get("evidence") or {}) <= set(drill["expect"]), drill["id"]
    for step in _steps(drill):
        assert step["ns"] in ("a", "b", "c", "host") and _placeholders(step["sh"]) <= TOPOLOGY, step
    for t in drill.get("traffic") or []:
        assert t["ns"] in ("a", "b", "c", "host") and _placeholders(t["run"]) <= TOPOLOGY, t
        assert t["run"].split()[0] in ("udp-sink", "udp-send", "udp-stuck", "tcp-stuck", "tcp-connect", "tcp-sink",
                                       "raw-frames", "first-fragments", "tcp-out-of-window", "xdp-drop"), t
    if drill.get("inject"):
        assert drill.get("remove") and drill.get("check"), "a fault needs its remove and its check: %s" % drill["id"]


def test_the_drills_the_role_offers_fit_it() -> None:
    offered = [d for d in DRILLS if d.get("role") == "drill"]
    for d in offered:
        where = set(s["ns"] for s in _steps(d) + (d.get("traffic") or []))
        assert where <= ({"host"} if d.get("hosts_only") else {"b"}), d["id"]
        for s in _steps(d) + (d.get("traffic") or []):
            assert _placeholders(s.get("sh") or s.get("run")) <= ROLE_PLACEHOLDERS, (d["id"], s)
    with open(os.path.join(ROOT, "roles", "inject", "meta", "argument_specs.yml")) as f:
        spec = yaml.safe_load(f)["argument_specs"]["main"]["options"]["packetloss_inject_drills"]
    assert spec["choices"] == sorted(d["id"] for d in offered)
    assert set(d.get("role") for d in DRILLS) == {None, "drill", "netem", "random_drop"}


def test_docs_drops_md_shows_the_matrix_of_the_table() -> None:
    with open(DOC) as f:
        page = f.read()
    assert BEGIN + "\n\n" + matrix_markdown(DRILLS) + "\n" + END in page, \
        "regenerate docs/drops.md: python tests/unit/test_drill_table.py"


def write_doc() -> None:
    with open(DOC) as f:
        page = f.read()
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: BEGIN + "\n\n" + matrix_markdown(DRILLS) + "\n" + END,
                 page, flags=re.S)
    with open(DOC, "w") as f:
        f.write(new)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    write_doc()
