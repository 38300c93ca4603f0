"""What a model will do, before it runs: the analysis and its pictures.

- :mod:`~doge_datagen.analysis.markov`: :func:`analyze` (stationary occupancy, dwell times,
  events per tick, reachability, the speed for a target rate) and :class:`ModelAnalysis`;
- :mod:`~doge_datagen.analysis.plots`: the hourly rate plots (matplotlib, optional);
- :mod:`~doge_datagen.analysis.graph`: :class:`DataOnlineGeneratorGrapher`, the state graph
  (Graphviz).
"""

from doge_datagen.analysis.markov import ModelAnalysis, analyze, speed_for_rate

__all__ = ["ModelAnalysis", "analyze", "speed_for_rate"]
