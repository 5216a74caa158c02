"""Compare the collection's netlink reader with pyroute2's, in the namespace this script runs in.

Run as ``python3 netlink_oracle.py COLLECTIONS_ROOT``: COLLECTIONS_ROOT holds ansible_collections/netdiag/packetloss.
pyroute2 is the oracle: it does its own dumps and decodes every field with its own message classes, so a wrong
offset or attribute number in plugins/module_utils/_kernel/rtnetlink.py shows as a difference. The collection itself does
not use pyroute2 (docs/fleet.md says why). Prints one JSON object: what was compared, and every difference.
Python >= 3.9, pyroute2 0.7 or 0.9.
"""
from __future__ import annotations

import json
import sys
from importlib import metadata

from pyroute2 import IPRoute

sys.path.insert(0, sys.argv[1])
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import rtnetlink as _netlink  # noqa: E402
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import read_qdiscs  # noqa: E402

QUEUE_FIELDS = {"qlen": "qlen", "backlog": "backlog_bytes", "drops": "drops", "requeues": "requeues",
                "overlimits": "overlimits"}


def handle(value: int) -> str:
    return _netlink.format_handle(value)


def oracle_links(ipr: IPRoute) -> dict:
    out = {}
    for link in ipr.get_links():
        info = link.get_attr("IFLA_LINKINFO")
        stats = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS") or {}
        out[link.get_attr("IFLA_IFNAME")] = {
            "ifindex": link["index"],
            "operstate": link.get_attr("IFLA_OPERSTATE"),
            "mtu": link.get_attr("IFLA_MTU"),
            "qdisc": link.get_attr("IFLA_QDISC"),
            "kind": info.get_attr("IFLA_INFO_KIND") if info is not None else None,
            "stats": dict((k, v) for k, v in dict(stats).items() if k in _netlink.LINK_STATS),
        }
    return out


def oracle_qdiscs(ipr: IPRoute, names: dict) -> list:
    rows = []
    for msg in ipr.get_qdiscs():
        kind = msg.get_attr("TCA_KIND")
        stats = {"bytes": 0, "packets": 0, "drops": 0, "overlimits": 0, "requeues": 0, "backlog_bytes": 0, "qlen": 0}
        stats2 = msg.get_attr("TCA_STATS2")
        if stats2 is not None:
            basic = stats2.get_attr("TCA_STATS_BASIC")
            if basic is not None:
                stats["bytes"], stats["packets"] = basic["bytes"], basic["packets"]
            queue = stats2.get_attr("TCA_STATS_QUEUE")
            if queue is not None:
                for theirs, ours in QUEUE_FIELDS.items():
                    stats[ours] = queue[theirs]
        options = {}
        opts = msg.get_attr("TCA_OPTIONS")
        if kind == "tbf" and opts is not None:
            parms = opts.get_attr("TCA_TBF_PARMS")
            options = {"limit": parms["limit"], "buffer": parms["buffer"], "mtu": parms["mtu"]}
        elif kind in ("pfifo", "bfifo") and opts is not None:
            options = {"limit": opts["limit"]}
        elif kind == "netem" and opts is not None:
            # tc_netem_qopt, which every pyroute2 version decodes (the attributes after it differ between versions)
            options = {"limit": opts["limit"], "loss": round(opts["loss"] * 100.0 / 0xFFFFFFFF, 4)}
        rows.append({"interface": names.get(msg["index"]), "ifindex": msg["index"], "kind": kind,
                     "handle": handle(msg["handle"]), "parent": handle(msg["parent"]),
                     "options": options, "stats": stats})
    return rows


def key(row: dict) -> tuple:
    return (row["ifindex"], row["handle"], row["parent"])


def compare(theirs: object, before: object, after: object, where: str, diffs: list) -> None:
    """Our reading ``before`` and ``after`` pyroute2's: a counter must lie between them, anything else equal."""
    if isinstance(theirs, dict):
        for key in theirs:
            if not isinstance(before, dict) or not isinstance(after, dict) or key not in before or key not in after:
                diffs.append("%s.%s: missing (pyroute2: %r)" % (where, key, theirs[key]))
            else:
                compare(theirs[key], before[key], after[key], "%s.%s" % (where, key), diffs)
    elif ".stats." in where:
        if not (isinstance(before, int) and isinstance(after, int) and min(before, after) <= theirs <= max(before, after)):
            diffs.append("%s: %r then %r, pyroute2 read %r in between" % (where, before, after, theirs))
    elif isinstance(theirs, float) or isinstance(after, float):
        if not isinstance(after, (int, float)) or abs(float(after) - float(theirs)) > 1e-3:
            diffs.append("%s: %r, pyroute2 %r" % (where, after, theirs))
    elif theirs != after:
        diffs.append("%s: %r, pyroute2 %r" % (where, after, theirs))


def main() -> None:
    first = _netlink.Netlink()
    links_before, qdiscs_before = first.links(), read_qdiscs(first)
    with IPRoute() as ipr:
        links = oracle_links(ipr)
        qdiscs = oracle_qdiscs(ipr, dict((row["ifindex"], name) for name, row in links.items()))
    second = _netlink.Netlink()
    our_links, our_qdiscs = second.links(), read_qdiscs(second)
    diffs: list = []
    if sorted(links) != sorted(our_links):
        diffs.append("links: %s, pyroute2 %s" % (sorted(our_links), sorted(links)))
    for name in links:
        compare(links[name], links_before.get(name, {}), our_links.get(name, {}), "link %s" % name, diffs)
    if sorted(map(key, qdiscs)) != sorted(map(key, our_qdiscs)):
        diffs.append("qdiscs: %s, pyroute2 %s" % (sorted(map(key, our_qdiscs)), sorted(map(key, qdiscs))))
    before_by_key = dict((key(row), row) for row in qdiscs_before)
    after_by_key = dict((key(row), row) for row in our_qdiscs)
    for row in qdiscs:
        compare(row, before_by_key.get(key(row), {}), after_by_key.get(key(row), {}),
                "qdisc %s %s" % (row["interface"], row["handle"]), diffs)
    print(json.dumps({"pyroute2": metadata.version("pyroute2"), "links": sorted(links),
                      "qdiscs": [(r["interface"], r["kind"], r["handle"], r["parent"], r["stats"]["drops"]) for r in qdiscs],
                      "diffs": diffs}))


if __name__ == "__main__":
    main()
