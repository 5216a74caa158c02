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
