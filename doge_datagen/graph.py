"""The original module of the state graph, kept so that ``from doge_datagen.graph import
DataOnlineGeneratorGrapher`` works; it lives in :mod:`doge_datagen.analysis.graph`."""

from doge_datagen.analysis.graph import DataOnlineGeneratorGrapher

__all__ = ["DataOnlineGeneratorGrapher"]
