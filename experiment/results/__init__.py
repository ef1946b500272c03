"""The results stage: typed, frozen contracts and their JSON files.

The field names are the results.json contract (README, "results.json"): other
tools read them, so extra fields may be added and none renamed.
"""

from experiment.results.analysis import (
    AnalysisResults,
    DataQuality,
    DataQualityCheck,
    Heterogeneity,
    ResultRow,
    SegmentInfo,
    SegmentSrm,
    Srm,
    TimelinePoint,
    load_results,
)
from experiment.results.balance import Balance, BalanceTest, SegmentBalance
from experiment.results.heterogeneity import HeterogeneityTests, SegmentInteraction
from experiment.results.jsonvalue import json_ready

__all__ = [
    "AnalysisResults",
    "Balance",
    "BalanceTest",
    "DataQuality",
    "DataQualityCheck",
    "Heterogeneity",
    "HeterogeneityTests",
    "ResultRow",
    "SegmentBalance",
    "SegmentInfo",
    "SegmentInteraction",
    "SegmentSrm",
    "Srm",
    "TimelinePoint",
    "json_ready",
    "load_results",
]
