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
    type: list
    elements: dict
    required: true
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
  description: The absolute paths written, in order.
  type: list
  elements: str
  returned: success
"""
