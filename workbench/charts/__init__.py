"""Charts (matplotlib), display only: each takes the DataFrame a helper returned and draws it.

- `outcome_bars(frame)`: claims per status, EUR paid on the bars (`ClaimBatch.plot()`);
- `waterfall(frame)`: a trace's spans on one time axis (`wb.traces.waterfall(claim)`);
- `score_chart(frame, by=)`, `scores_over_time(frame, by=)`: judge scores by prompt version,
  label or service version (`wb.scores.chart`, `wb.scores.over_time`);
- `paired_scores(table, a, b)`, `decision_matrix(table, a, b)`, `accuracy_bars(results)`: an
  experiment's variants compared (`Comparison.plot_scores()`, `.plot_decisions()`,
  `Experiment.plot_accuracy()`).
- `sweep_heatmap(frame)`: a crash-point sweep, boundary x fault kind, coloured by result and
  annotated with the recovery time (`SweepReport.heatmap()`).
"""

from __future__ import annotations

from .experiments import accuracy_bars, decision_matrix, paired_scores
from .outcomes import STATUS_COLORS, outcome_bars
from .scores import GROUPINGS, score_chart, scores_over_time
from .sweep import sweep_heatmap
from .waterfall import waterfall, waterfall_rows

__all__ = [
    "GROUPINGS",
    "STATUS_COLORS",
    "accuracy_bars",
    "decision_matrix",
    "outcome_bars",
    "paired_scores",
    "score_chart",
    "scores_over_time",
    "sweep_heatmap",
    "waterfall",
    "waterfall_rows",
]
