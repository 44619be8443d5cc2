"""Scoring beside training: ``smfd eval`` (a net or the degraded input on a split, another tool's outputs against
sharp faces), the per-face metrics validation also reports, and the masks deblurring nets read. Nets run through
their :class:`~smfd.models.runner.Runner`; nothing here depends on the training loop."""

from .evaluation import INPUT, evaluate_model, score_folders, select_ids, summarize, write_results
from .masks import MaskSource, mask_provider, parse_mask_source
from .rows import metric_rows, summarize_rows

__all__ = ["INPUT", "MaskSource", "evaluate_model", "mask_provider", "metric_rows", "parse_mask_source",
           "score_folders", "select_ids", "summarize", "summarize_rows", "write_results"]
