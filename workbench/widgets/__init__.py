"""ipywidgets panels (display only; the work is done by the helpers they call):

- `FaultPanel` (`wb.faults.panel()`): pick a claim and a fault, submit, watch the journal live,
  kill or restart processes, read the outcome and the evidence;
- `LabelSwitcher` (`wb.prompts.switcher(name)`): where each label of a prompt points, and a
  Promote button.
"""

from __future__ import annotations

from .label_switcher import LabelSwitcher
from .panel import FaultPanel

__all__ = ["FaultPanel", "LabelSwitcher"]
