# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_dropreasons (parsing of tracefs files) and the analyzer's drop-reason tables and findings, against
cases/dropreasons.yml and the files saved from this machine's kernel (fixtures/tracefs, see SOURCES.md)."""
from __future__ import annotations

import os
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import counters as _counters
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import reasons as _reasons

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import dropreasons as _dropreasons

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "fixtures", "tracefs")
with open(os.path.join(HERE, "cases", "dropreasons.yml")) as _f:
    CASES = yaml.safe_load(_f)


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


FORMAT_6_18 = fixture("kfree_skb_format_6.18")
# include/trace/events/skb.h of 6.1 (Debian 6.1.192): no rx_sk, location printed with %p, NOT_SPECIFIED = 1
FORMAT_6_1 = """name: kfree_skb
ID: 1421
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:28;\tsize:4;\tsigned:0;

print fmt: "skbaddr=%p protocol=%u location=%p reason: %s", REC->skbaddr, REC->protocol, REC->location, \
__print_symbolic(REC->reason, { 1, "NOT_SPECIFIED" }, { 2, "NO_SOCKET" }, { 6, "NETFILTER_DROP" }, { 65, "MAX" })
"""
FORMAT_5_10 = """name: kfree_skb
ID: 1300
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;

print fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr, REC->protocol, REC->location
"""


def test_format_of_this_kernel_names_reasons_by_its_own_numbers() -> None:
    fmt = _dropreasons.parse_format(FORMAT_6_18)
    assert fmt["reasons"][2] == "NOT_SPECIFIED" and fmt["reasons"][12] == "NETFILTER_DROP"
    assert fmt["reasons"][127] == "RECURSION_LIMIT" and 1 not in fmt["reasons"]  # SKB_CONSUMED is not printed
    assert fmt["location_symbol"] is True and "rx_sk" in fmt["fields"]


def test_format_of_6_1_numbers_differ_and_location_is_a_pointer() -> None:
    fmt = _dropreasons.parse_format(FORMAT_6_1)
    assert fmt["reasons"][1] == "NOT_SPECIFIED" and fmt["reasons"][6] == "NETFILTER_DROP"
    assert fmt["location_symbol"] is False


def test_format_without_reasons() -> None:
    fmt = _dropreasons.parse_format(FORMAT_5_10)
    assert fmt["reasons"] == {} and "reason" not in fmt["fields"]


def test_format_of_another_event_is_refused() -> None:
    with pytest.raises(ValueError):
        _dropreasons.parse_format("name: x\nformat:\n\tfield:int a;\toffset:0;\tsize:4;\tsigned:1;\n")


@pytest.mark.parametrize("case", CASES["hist"], ids=lambda c: c["name"])
def test_hist(case: Dict[str, Any]) -> None:
    out = _dropreasons.parse_hist(case["text"], dict((int(k), v) for k, v in case["reasons"].items()))
    assert out["events"] == case["events"]
    assert out["hits"] == case["hits"] and out["dropped"] == case["dropped"]


@pytest.mark.parametrize("case", CASES["lines"], ids=lambda c: c["name"])
def test_trace_pipe_lines(case: Dict[str, Any]) -> None:
    counts: Dict[Any, int] = {}
    n = _dropreasons.count_lines(case["text"].encode(), counts, case["symbols"])
    assert sorted(counts.items(), key=str) == sorted((((r, l), c) for r, l, c in case["counts"]), key=str)
    assert n == sum(c for _r, _l, c in case["counts"])


def test_hist_support_from_the_trigger_file() -> None:
    assert _dropreasons.hist_supported(fixture("kfree_skb_trigger_6.18")) is False  # this machine: no hist triggers
    with_hist = "# Available triggers:\n# traceon traceoff snapshot stacktrace enable_event disable_event enable_hist disable_hist hist\n"
    assert _dropreasons.hist_supported(with_hist) is True
    assert _dropreasons.hist_supported("") is False


def test_cpu_stats() -> None:
    stats = _dropreasons.parse_cpu_stats(fixture("cpu_stats_6.18"))
    assert stats["overrun"] == 0 and stats["dropped events"] == 0 and "entries" in stats


def test_stale_instances_are_ours_of_dead_processes_or_too_old() -> None:
    now = 1000000.0
    names = ["netdiag-10-999990", "netdiag-11-999990", "netdiag-12-%d" % (now - _dropreasons.STALE_AFTER - 1),
             "netdiag-13-999990", "someone-else", "netdiag-x-1", "netdiag-14-999990"]
    alive = {11: True, 12: True, 13: False, 10: False, 14: True}
    stale = _dropreasons.stale_instances(names, now, alive=lambda pid: alive[pid], own_pid=10)
    assert stale == ["netdiag-12-%d" % (now - _dropreasons.STALE_AFTER - 1), "netdiag-13-999990"]


def test_an_instance_of_another_pid_namespace_is_stale_by_age_only() -> None:
    """tracefs is the host's, shared with containers: a PID of another PID namespace says nothing here."""
    now, old = 1000000.0, 1000000 - _dropreasons.STALE_AFTER - 1
    names = ["netdiag-20-999990-111", "netdiag-21-999990-222", "netdiag-22-%d-111" % old, "netdiag-23-999990"]
    stale = _dropreasons.stale_instances(names, now, alive=lambda pid: False, own_pid=1, own_pidns=222)
    assert stale == ["netdiag-21-999990-222", "netdiag-22-%d-111" % old, "netdiag-23-999990"]
    assert _dropreasons.instance_name(5, 6, 7) == "netdiag-5-6-7" and _dropreasons.is_instance_name("netdiag-5-6-7")
    assert not _dropreasons.is_instance_name("../netdiag-5-6") and not _dropreasons.is_instance_name("netdiag-5-6-7.sock")


# ---------------------------------------------------------------------------------------------------------------
# the analyzer's tables
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("row", CASES["classes"], ids=lambda r: "%s@%s" % (r[0], r[1]))
def test_class_of_a_reason_and_location(row: List[Any]) -> None:
    reason, location, kind, fid = row
    got = _reasons.drop_reason_class(reason, location)
    assert (got[0], got[1]) == (kind, fid)
    assert got[2]


def test_every_reason_of_this_kernel_is_a_finding_or_noise() -> None:
    """Each reason of the 6.18 format file is named by a finding or the noise table: a new one fails here (and is
    reported as drops.unexplained by the analyzer meanwhile). NOT_SPECIFIED goes by its location; MAX is no reason."""
    named = set(r for rs in _reasons.DROP_REASON_FINDINGS.values() for r in rs[0])
    named |= set(r for r, _l, _w in _reasons.DROP_REASON_NOISE if r is not None and _l is None)
    reasons = set(_dropreasons.parse_format(FORMAT_6_18)["reasons"].values()) - {"NOT_SPECIFIED", "MAX"}
    assert sorted(reasons - named) == []
    assert not set(r for rs in _reasons.DROP_REASON_FINDINGS.values() for r in rs[0]) & set(
        r for r, _l, _w in _reasons.DROP_REASON_NOISE if r is not None and _l is None), "a reason in both tables"


def test_docs_drop_reasons_md_shows_the_tables_of_the_code() -> None:
    path = os.path.join(HERE, "..", "..", "..", "..", "docs", "drop-reasons.md")
    with open(path) as f:
        page = f.read()
    assert _reasons.drop_reasons_markdown() in page, "regenerate the tables in docs/drop-reasons.md from drop_reasons_markdown()"


def _facts(label: str, kind: str, ts: float, **layers: Any) -> Dict[str, Any]:
    out = {"target": {"label": label, "kind": kind, "name": label.split(":")[-1]}, "timestamp": ts}
    out.update(layers)
    return out


def _layer(events: List[Any], lost: int = 0, duration: float = 5.0) -> Dict[str, Any]:
    return {"available": True, "scope": "host", "method": "buffer", "duration": duration, "lost": lost,
            "events": [{"reason": r, "location": l, "count": c} for r, l, c in events]}


def _rule(packets: int) -> Dict[str, Any]:
    return {"rulesets": [], "rules": [{"family": "ipv4", "backend": "nft", "table": "filter", "chain": "INPUT", "target": "DROP",
                                       "spec": "-p udp --dport 5001 -j DROP", "counters": {"packets": packets, "bytes": 0}}],
            "rules_listed": "drops", "random_drop_rules": [], "rule_count": 1, "notes": [], "complete": True, "unread": []}


def test_one_event_is_never_above_info_and_noise_is_counted_apart() -> None:
    before = {"host": _facts("host", "host", 0.0)}
    after = {"host": _facts("host", "host", 5.0, drop_reasons=_layer([
        ("NETFILTER_DROP", "nft_do_chain", 1), ("SOCKET_RCVBUFF", "udp_queue_rcv_one_skb", 2),
        ("NOT_SPECIFIED", "ip6_mc_input", 400), ("QUEUE_PURGE", "tcp_disconnect", 88)]))}
    fs = _analyze.analyze_host(before, after)
    by = dict((f["id"], f) for f in fs)
    assert by["netfilter.drop_reason"]["severity"] == "info" and by["socket.drop_reason"]["severity"] == "info"
    assert by["drops.noise"]["severity"] == "info" and by["drops.noise"]["evidence"]["delta"] == 488
    assert "NOT_SPECIFIED x 400 at ip6_mc_input" in by["drops.noise"]["summary"]
    assert not [f for f in fs if f["id"] == "drops.unexplained"]


def test_a_reason_is_attributed_to_the_one_target_whose_counters_moved() -> None:
    before = {"host": _facts("host", "host", 0.0, iptables=_rule(0)), "netns:a": _facts("netns:a", "netns", 0.0, iptables=_rule(10)),
              "netns:b": _facts("netns:b", "netns", 0.0, iptables=_rule(7))}
    after = {"host": _facts("host", "host", 5.0, iptables=_rule(0), drop_reasons=_layer([("NETFILTER_DROP", "nft_do_chain", 120)])),
             "netns:a": _facts("netns:a", "netns", 5.0, iptables=_rule(130), drop_reasons={"available": True, "recorded_with": "host"}),
             "netns:b": _facts("netns:b", "netns", 5.0, iptables=_rule(7))}
    fs = _analyze.analyze_host(before, after)
    f = [x for x in fs if x["id"] == "netfilter.drop_reason"]
    assert len(f) == 1
    f = f[0]
    assert f["target"] == "netns:a" and f["evidence"]["scope"] == "target" and f["severity"] == "warning"
    assert f["summary"].startswith("NETFILTER_DROP x 120 at nft_do_chain in 5 s, 24/s; corroborated by netfilter.drop_hits on netns:a")
    assert [c["id"] for c in f["evidence"]["corroborated_by"]] == ["netfilter.drop_hits"]


def test_without_corroboration_or_on_several_targets_the_finding_is_the_hosts() -> None:
    before = {"host": _facts("host", "host", 0.0, iptables=_rule(0)), "netns:a": _facts("netns:a", "netns", 0.0, iptables=_rule(0))}
    layer = _layer([("NETFILTER_DROP", "nft_do_chain", 120), ("SOCKET_RCVBUFF", "udp_queue_rcv_one_skb", 50)])
    after = {"host": _facts("host", "host", 5.0, iptables=_rule(60), drop_reasons=layer),
             "netns:a": _facts("netns:a", "netns", 5.0, iptables=_rule(60))}
    by = dict((f["id"], f) for f in _analyze.analyze_host(before, after))
    assert by["netfilter.drop_reason"]["target"] == "host" and by["netfilter.drop_reason"]["evidence"]["scope"] == "host"
    assert by["socket.drop_reason"]["target"] == "host" and by["socket.drop_reason"]["evidence"]["corroborated_by"] == []
    assert by["socket.drop_reason"]["severity"] == "critical"


def test_unexplained_and_lost_events_are_reported() -> None:
    before = {"host": _facts("host", "host", 0.0)}
    after = {"host": _facts("host", "host", 5.0, drop_reasons=_layer([("NOT_SPECIFIED", "mydrv_rx", 40), ("NEW_REASON", "x", 2)], lost=900))}
    fs = [f for f in _analyze.analyze_host(before, after) if f["id"] == "drops.unexplained"]
    subjects = sorted(f["subject"] for f in fs)
    assert subjects == ["drop events lost", "drop reason NEW_REASON", "drop reason NOT_SPECIFIED"]
    lost = [f for f in fs if f["subject"] == "drop events lost"][0]
    assert lost["evidence"]["delta"] == 900 and lost["severity"] == "warning"
    assert [f for f in fs if f["subject"] == "drop reason NEW_REASON"][0]["severity"] == "info"


def test_no_findings_from_an_unavailable_layer_or_one_snapshot() -> None:
    before = {"host": _facts("host", "host", 0.0)}
    after = {"host": _facts("host", "host", 5.0, drop_reasons={"available": False, "cause": "no_root", "reason": "x"})}
    assert _analyze.analyze_host(before, after) == []
    assert _analyze.analyze_host({"host": _facts("host", "host", 5.0, drop_reasons=_layer([("NETFILTER_DROP", "nft_do_chain", 120)]))}) == []


def test_recorder_takes_the_hist_path_where_the_kernel_offers_it(tmp_path: Any, monkeypatch: Any) -> None:
    """The hist path through a fake tracefs tree (this machine's kernel has no hist triggers; the VM lab runs it for
    real): the trigger written, the event left disabled, the histogram read and named by the format's numbers."""
    import shutil
    root = tmp_path / "tracing"
    (root / "instances").mkdir(parents=True)
    (root / "events" / "skb" / "kfree_skb").mkdir(parents=True)
    (root / "events" / "skb" / "kfree_skb" / "format").write_text(FORMAT_6_1)
    hist_text = CASES["hist"][0]["text"]
    written: Dict[str, List[str]] = {}
    real_mkdir = os.mkdir

    def fake_mkdir(path: str, *a: Any) -> None:  # tracefs makes an instance's tree on mkdir
        real_mkdir(path, *a)
        ev = path
        for part in ("events", "skb", "kfree_skb"):
            ev = os.path.join(ev, part)
            real_mkdir(ev)
        for name, text in (("trigger", "# Available triggers:\n# traceon traceoff snapshot stacktrace enable_event "
                                       "disable_event enable_hist disable_hist hist\n"), ("hist", hist_text), ("enable", "0\n")):
            with open(os.path.join(ev, name), "w") as f:
                f.write(text)
        with open(os.path.join(path, "buffer_size_kb"), "w") as f:
            f.write("1410\n")

    real_write = _dropreasons._write

    def spy_write(path: str, text: str) -> None:
        written.setdefault(os.path.relpath(path, str(root)).split(os.sep, 2)[-1], []).append(text)
        real_write(path, text)

    monkeypatch.setattr(_dropreasons, "is_mounted", lambda path: True)
    monkeypatch.setattr(_dropreasons.os, "mkdir", fake_mkdir)
    monkeypatch.setattr(_dropreasons, "_write", spy_write)
    monkeypatch.setattr(_dropreasons, "_watchdog", lambda inst, r: (os.getpid(), os.open(os.devnull, os.O_WRONLY)))
    monkeypatch.setattr(_dropreasons, "remove_instance", shutil.rmtree)
    rec = _dropreasons.Recorder(str(root)).start()
    assert rec.method == "hist" and rec._thread is None
    out = rec.stop()
    cmd = "hist:keys=reason,location.sym:sort=hitcount.descending:size=%d" % _dropreasons.HIST_SIZE
    assert written["events/skb/kfree_skb/trigger"] == [cmd, cmd + ":pause"]
    assert "events/skb/kfree_skb/enable" not in written  # the event stays disabled: no ring buffer
    assert written["buffer_size_kb"] == ["4"]
    assert out["method"] == "hist" and out["lost"] == 2 and out["total"] == 146 and out["location_symbols"] is True
    assert out["events"][0] == {"reason": "NETFILTER_DROP", "location": "nf_hook_slow", "count": 123}
    assert os.listdir(str(root / "instances")) == []


def test_trigger_files_are_written_without_truncating(tmp_path: Any) -> None:
    """Opening an event's trigger file with O_TRUNC removes all its triggers: the ':pause' written that way replaced
    the histogram with an empty one (seen on the VM lab's 6.1: every recording read 0 hits). Trigger writes append;
    other control files (enable, buffer_size_kb) are truncated as echo > does."""
    trigger, enable = tmp_path / "trigger", tmp_path / "enable"
    trigger.write_text("hist:keys=reason\n")
    enable.write_text("1\n")
    _dropreasons._write(str(trigger), "hist:keys=reason:pause\n")
    _dropreasons._write(str(enable), "0")
    assert trigger.read_text() == "hist:keys=reason\nhist:keys=reason:pause\n"
    assert enable.read_text() == "0"


@pytest.mark.parametrize("case", CASES["attribution"], ids=[c["reason"] for c in CASES["attribution"]])
def test_a_reason_goes_to_the_target_whose_family_counter_moved(case: Dict[str, Any]) -> None:
    def netstat(n: int) -> Dict[str, Any]:
        return {"available": True, "snmp": {case["section"]: {case["counter"]: n}}}
    before = {"host": _facts("host", "host", 0.0, netstat=netstat(0)), "netns:b": _facts("netns:b", "netns", 0.0, netstat=netstat(5))}
    after = {"host": _facts("host", "host", 5.0, netstat=netstat(0),
                            drop_reasons=_layer([(case["reason"], case["location"], 100)])),
             "netns:b": _facts("netns:b", "netns", 5.0, netstat=netstat(105))}
    fs = _analyze.analyze_host(before, after)
    f = [x for x in fs if x["id"] == case["finding"]]
    assert len(f) == 1, [(x["id"], x["target"], x["summary"]) for x in fs]
    assert f[0]["target"] == "netns:b" and f[0]["evidence"]["scope"] == "target", f[0]
    assert case["by"] in [c["id"] for c in f[0]["evidence"]["corroborated_by"]]


def test_every_drop_counter_of_a_family_corroborates_its_drop_reasons() -> None:
    """The class, not a case: an IP or TCP counter finding that counts drops (COUNTER_MAP; not a symptom) corroborates
    the drop-reason finding of its layer, so the reason is attributed where that counter moved."""
    for layer in ("ip", "tcp"):
        corr = _reasons.DROP_REASON_FINDINGS["%s.drop_reason" % layer][2]
        for _source, _pattern, fid, _why in _counters.COUNTER_MAP:
            if fid and fid.startswith(layer + ".") and fid not in _analyze.SYMPTOMS and not fid.endswith(".drop_reason"):
                assert fid in corr, (fid, corr)


@pytest.mark.parametrize("case", CASES["coverage"], ids=lambda c: c["name"])
def test_drops_coverage(case: Dict[str, Any]) -> None:
    facts: Dict[str, Any] = {"target": {"label": "host"}}
    if case["layer"] is not None:
        facts["drop_reasons"] = case["layer"]
    cov = _analyze.layer_coverage(facts, before={"target": {"label": "host"}})["drops"]
    assert cov["state"] == case["state"], cov
    assert cov["available"] is (case["state"] in ("read", "partial"))
    if "reason" in case:
        assert case["reason"] in cov["reason"], cov
    assert ("drops" in _analyze.not_read({"drops": cov})) is (case["state"] != "read")
