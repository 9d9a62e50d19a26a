"""Telling the user something beside a result: in a Jupyter kernel, as HTML in the cell's output
(a note does not land in stderr, where it would read as a crash); elsewhere, as a Python
warning."""

from __future__ import annotations

import html
import warnings

__all__ = ["WorkbenchWarning", "in_jupyter", "warn"]


class WorkbenchWarning(UserWarning):
    """Something the workbench cannot do with an input, said instead of silently ignored."""


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (where display() reaches a frontend)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def warn(message: str) -> None:
    """Show `message` as a warning: a yellow note in Jupyter, `WorkbenchWarning` elsewhere."""
    if in_jupyter():
        from IPython.display import HTML, display

        display(
            HTML(
                "<div style='background:#fff8e1;border-left:4px solid #f9a825;padding:4px 8px;"
                f"white-space:pre-wrap;font-size:12px'>\u26a0 {html.escape(message)}</div>"
            )
        )
    else:
        warnings.warn(message, WorkbenchWarning, stacklevel=3)
