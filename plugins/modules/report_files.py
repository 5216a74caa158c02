#!/usr/bin/python
# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: report_files
short_description: Write report files on the controller, all in one task
version_added: 0.1.0
description:
  - Writes a list of files (as the P(netdiag.packetloss.packetloss_report_files#filter) filter renders them) under a
    directory on the controller, each atomically (a temporary file, then a rename), creating directories as needed.
  - An action plugin, which runs in the controller process and sends nothing to the managed host, so a fleet's reports
    cost one task instead of one file copy per report per host.
  - The files are the run's output, not a change to a managed host, so the task never reports C(changed), and it
    writes in check mode too.
author: netdiag.packetloss contributors (@netdiag)
options:
  dest:
    description: The directory on the controller the paths are relative to.
    type: path
    required: true
  files:
    description:
      - The files, each a dictionary with C(path) (relative to O(dest), without C(..)) and C(content) (text).
      - Every path is checked before the first file is written.
      - Exactly one of O(files), O(hosts) and O(merge) is required.
    type: list
    elements: dict
  hosts:
    description:
      - Inventory host names whose diagnoses (the variable O(var), as the P(netdiag.packetloss.diagnose#module) task
        sets it) to report - every file P(netdiag.packetloss.packetloss_report_files#filter) renders - rendered here, in
        the controller process, from each host's diagnosis taken once as stored, which is what the diagnose role does
        (seconds for 20,000 targets, where a filter over hostvars took minutes).
      - Also returns the console summary (RV(summary)). Hosts without a diagnosis are named in it, not reported.
    type: list
    elements: str
  all_hosts:
    description:
      - With O(hosts), every host the run was for (C(ansible_play_hosts_all)) - those without a diagnosis (unreachable,
        or failed before the reports) are named as C(missing) in C(summary.json) and the console summary.
    type: list
    elements: str
  merge:
    description:
      - Report directories of several runs (or glob patterns of them) to merge into one fleet report in O(dest) - the
        slices of a sliced job, runs from several control nodes. Each is read back from its C(summary.json) and the
        per-target JSON files it lists, and the fleet is rendered by the same writers as O(hosts) does, plus the
        Prometheus textfile C(packetloss.prom).
      - Refused, with an error naming them and nothing written - sets of another schema version or without a run, a
        set whose files disagree with its C(summary.json), one run recorded differently in two sets, and a host in two
        slices of one run (same run id or group). A host in sets of different runs is taken whole from its newest
        diagnosis (docs/report-schema.md#merging-report-sets).
      - O(dest) must not be one of them.
    type: list
    elements: str
  run:
    description:
      - With O(hosts) or O(merge), the run recorded in the report set (docs/report-schema.md#runs) - C(id), C(group),
        C(slice), C(limit), C(started_at); an empty or missing key is chosen here - C(id) C(awx-job-N) from AWX's
        C(awx_job_id) (else a fresh C(YYYYMMDDTHHMMSSZ-XXXXXXXX)), C(group) C(awx-workflow-job-N) from
        C(awx_workflow_job_id), C(limit) from C(ansible_limit), C(started_at) the first snapshot's time.
    type: dict
  stats_severity:
    description: With O(hosts) or O(merge), RV(stats) lists the finding ids, targets and findings of at least this severity.
    type: str
    choices: [info, warning, critical]
    default: warning
  stats_limit:
    description: With O(hosts) or O(merge), RV(stats) lists at most this many targets, findings and missing hosts.
    type: int
    default: 50
  var:
    description: With O(hosts), the variable that holds each host's diagnosis.
    type: str
    default: packetloss_diagnosis
  write:
    description: With O(hosts), write the report files; C(false) only returns the console summary.
    type: bool
    default: true
  fail_severity:
    description: With O(hosts), in C(junit.xml) a target's layer fails on a finding of at least this severity.
    type: str
    choices: [info, warning, critical]
    default: warning
  max_probe_loss:
    description: With O(hosts), in C(junit.xml) a probe fails above this loss in percent.
    type: float
    default: 0.0
  summary_worst:
    description:
      - With O(hosts), the console summary's bound - the totals, then at most this many of the worst findings above
        info, of the layers not read in full and of the summary table's rows, each with how many more there are.
    type: int
    default: 20
  mode:
    description: The permissions of the files, in octal.
    type: str
    default: "0644"
attributes:
  action:
    support: full
    description: Runs on the controller as an action plugin.
  check_mode:
    support: full
    description: Writes the files in check mode too (they are reports on the controller, not changes to a host).
  diff_mode:
    support: none
    description: No diff is shown for report files.
  idempotent:
    support: full
    description: Writing the same content again gives the same files; the task never reports a change.
"""

EXAMPLES = r"""
- name: Every report of the play's diagnoses, and the console summary (what the diagnose role does)
  netdiag.packetloss.report_files:
    dest: reports
    hosts: "{{ ansible_play_hosts }}"
    summary_worst: 20
  register: reports
  run_once: true
  delegate_to: localhost

- name: Merge the report sets of three slices into one fleet report
  netdiag.packetloss.report_files:
    dest: reports/fleet
    merge: [reports/slices/*]
  register: merged
  run_once: true
  delegate_to: localhost

- name: Write the fleet reports
  netdiag.packetloss.report_files:
    dest: reports
    files: "{{ diagnoses | netdiag.packetloss.packetloss_report_files('all', report_dir='reports') }}"
  run_once: true
"""

RETURN = r"""
dest:
  description: The absolute directory the files were written under.
  type: str
  returned: success
written:
  description: The absolute paths written, in order (with O(hosts) or O(merge), the fleet reports only; see RV(target_files)).
  type: list
  elements: str
  returned: success
target_files:
  description: With O(hosts) or O(merge), how many per-target JSON files were written.
  type: int
  returned: with O(hosts) or O(merge)
summary:
  description: With O(hosts) or O(merge), the console summary of the diagnoses (docs/report-schema.md).
  type: str
  returned: with O(hosts) or O(merge)
stats:
  description:
    - With O(hosts) or O(merge), the compact result a workflow branches on, bounded whatever the fleet's size (what the
      roles publish with set_stats as C(packetloss_result); docs/awx.md#the-result).
  type: dict
  returned: with O(hosts) or O(merge)
run:
  description: With O(hosts) or O(merge), the run recorded in the report set (docs/report-schema.md#runs).
  type: dict
  returned: with O(hosts) or O(merge)
sources:
  description: With O(merge), the sets merged - C(dir), C(run) (C(id), C(slice)) and how many C(hosts) were taken from each.
  type: list
  elements: dict
  returned: with O(merge)
superseded:
  description: With O(merge), the hosts found in sets of two runs - C(host), C(kept) and C(dropped) (C(id), C(slice), C(dir)).
  type: list
  elements: dict
  returned: with O(merge)
"""
