# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.netdiag.packetloss`` importable when the tests run from a plain clone.

ansible-test runs them from inside an ``ansible_collections/netdiag/packetloss`` tree already;
from a clone elsewhere (``python -m pytest tests/unit``) a temporary tree whose
``ansible_collections/netdiag/packetloss`` is a symlink to the repository root is put first on sys.path.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _importable() -> bool:
    try:
        return importlib.util.find_spec("ansible_collections.netdiag.packetloss.plugins") is not None
    except ImportError:
        return False


if not _importable():
    _tree = tempfile.mkdtemp(prefix="netdiag-packetloss-")
    atexit.register(shutil.rmtree, _tree, True)
    os.makedirs(os.path.join(_tree, "ansible_collections", "netdiag"))
    os.symlink(REPO_ROOT, os.path.join(_tree, "ansible_collections", "netdiag", "packetloss"))
    sys.path.insert(0, _tree)
    for _name in [m for m in sys.modules if m == "ansible_collections" or m.startswith("ansible_collections.")]:
        del sys.modules[_name]  # a half-imported namespace from the failed lookup
