"""The report_files action plugin: every file written on the controller in one task, bad paths refused first."""
from __future__ import annotations

import json
import os
import subprocess

from conftest import ROOT


def play(tmp_path, files, check=False):
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "write", "netdiag.packetloss.report_files": {"dest": str(tmp_path / "out"), "files": files}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(["ansible-playbook", str(book)] + (["--check"] if check else []), cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)


def test_writes_every_file_and_reports_no_change(tmp_path):
    proc = play(tmp_path, [{"path": "host1/container:nginx.json", "content": "{}\n"}, {"path": "report.md", "content": "# r\n"}],
                check=True)
    assert proc.returncode == 0, proc.stdout
    assert "changed=0" in proc.stdout
    assert (tmp_path / "out" / "host1" / "container:nginx.json").read_text() == "{}\n"
    assert (tmp_path / "out" / "report.md").read_text() == "# r\n"
    assert oct(os.stat(tmp_path / "out" / "report.md").st_mode & 0o777) == "0o644"
    assert not [p for p in os.listdir(tmp_path / "out") if p.startswith(".report-")]  # no temporary file left


def test_a_bad_path_fails_before_anything_is_written(tmp_path):
    proc = play(tmp_path, [{"path": "ok.json", "content": "{}"}, {"path": "../escape.json", "content": "x"}])
    assert proc.returncode != 0
    assert "must be relative to dest, without '..'" in proc.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.json").exists()


def test_a_directory_in_the_way_is_named_and_nothing_is_left_behind(tmp_path):
    """Issue 14 item 8: report.html existing as a directory gave an error naming a temporary file."""
    (tmp_path / "out" / "report.html").mkdir(parents=True)
    proc = play(tmp_path, [{"path": "report.md", "content": "# r\n"}, {"path": "report.html", "content": "<html>"}])
    assert proc.returncode != 0
    dest = str(tmp_path / "out" / "report.html")
    assert "cannot write %s: it is a directory" % dest in proc.stdout, proc.stdout
    assert ".report-" not in proc.stdout
    assert not [p for p in os.listdir(tmp_path / "out") if p.startswith(".report-")]
    assert not (tmp_path / "out" / "report.md").exists()  # every destination checked before anything is written


def test_a_file_in_the_way_of_a_directory_is_named(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "host1").write_text("x")
    proc = play(tmp_path, [{"path": "host1/host.json", "content": "{}"}])
    assert proc.returncode != 0
    assert "cannot write %s: %s is not a directory" % (tmp_path / "out" / "host1" / "host.json", tmp_path / "out" / "host1") \
        in proc.stdout, proc.stdout


def role_reports(tmp_path, hosts, extra=None):
    """The diagnose role's report and summary tasks (tasks_from: report) over an inventory of ``hosts``
    ({name: diagnosis or None}), each diagnosis set as the host's fact as the diagnose task sets it."""
    import yaml  # pylint: disable=import-outside-toplevel
    for name, diagnosis in hosts.items():
        if diagnosis is not None:
            (tmp_path / ("%s.json" % name)).write_text(json.dumps(diagnosis))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": dict((h, None) for h in hosts), "vars": dict({
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "packetloss_report_dir": str(tmp_path / "reports")}, **(extra or {}))}}))
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "feed", "ansible.builtin.set_fact": {"packetloss_diagnosis": "{{ lookup('ansible.builtin.file', '%s/' ~ "
                                                      "inventory_hostname ~ '.json') | from_json }}" % tmp_path},
         "when": "inventory_hostname in %s" % json.dumps([h for h, d in hosts.items() if d is not None])},
        {"name": "reports", "ansible.builtin.import_role": {"name": "netdiag.packetloss.diagnose", "tasks_from": "report"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(["ansible-playbook", "-i", str(inventory), str(book)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)


def _fleet(hosts, targets):
    import sys  # pylint: disable=import-outside-toplevel
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from report_scale import Fleet  # pylint: disable=import-outside-toplevel
    fleet = Fleet()
    return dict(("host%04d" % i, fleet.host(i, targets)) for i in range(hosts))


def test_the_role_reports_from_the_hosts_facts_and_prints_a_bounded_summary(tmp_path):
    """Issue 13: the report task reads each host's diagnosis once in the action plugin and writes every report;
    the summary task prints the totals and at most packetloss_summary_worst of each list."""
    fleet = _fleet(3, 20)
    hosts = dict(fleet, nodiag=None)
    proc = role_reports(tmp_path, hosts, {"packetloss_summary_worst": 2})
    assert proc.returncode == 0, proc.stdout[-4000:]
    out = tmp_path / "reports"
    assert len(list(out.glob("host*/*.json"))) == 60
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hosts"] == 3 and summary["targets"] == 60
    assert "id=\"grid\"" in (out / "report.html").read_text()
    crit = sum(1 for d in fleet.values() for f in d["findings"] if f["severity"] == "critical")
    assert "60 target(s) on 3 host(s): %d critical, " % crit in proc.stdout, proc.stdout[-3000:]
    assert "no diagnosis from 1 host(s): nodiag" in proc.stdout
    assert "Worst targets (2 of 60;" in proc.stdout and "... and 58 more target(s) (see the reports)" in proc.stdout
    assert "reports: %s/report.html" % out in proc.stdout
    assert "changed=0" in proc.stdout


def test_without_reports_the_summary_is_printed_and_nothing_written(tmp_path):
    proc = role_reports(tmp_path, _fleet(1, 4), {"packetloss_reports": False})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "4 target(s) on 1 host(s):" in proc.stdout and "reports: " not in proc.stdout
    assert not (tmp_path / "reports").exists()
