# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Numbers as findings write them (the analyzer's summaries and netem's human words alike).

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

from typing import Optional


def fmt_num(v: Optional[float]) -> str:
    """Whole numbers without decimals, others with at most three; None is "?"."""
    if v is None:
        return "?"
    if float(v).is_integer():
        return "%d" % v
    return ("%.3f" % v).rstrip("0").rstrip(".")


__all__ = ["fmt_num"]
