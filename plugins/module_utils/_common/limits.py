# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounds shared by the modules (on the target) and the action plugins (on the controller).

This module_utils is PRIVATE and should only be used by this collection. It imports nothing, so an action plugin
can use it without loading the collectors into every controller worker.
"""
from __future__ import annotations

# The longest interval between two snapshots, in seconds.
MAX_INTERVAL = 3600
# The longest a drop-reason recording is held for the next module run (the diagnose role with probes): the longest
# interval and 5 minutes of probes and round trips.
HOLD_MAX = MAX_INTERVAL + 300

__all__ = ["MAX_INTERVAL", "HOLD_MAX"]
