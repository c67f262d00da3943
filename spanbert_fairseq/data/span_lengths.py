"""The span-length distribution: a geometric truncated to [lower, upper] and renormalised."""

import numpy as np


def span_length_probs(p, lower, upper):
    """P(len = l) for l in lower..upper, proportional to p (1-p)^(l-1); validated by MaskingParams.

    Renormalised over the support (a truncated geometric), not clipped.
    """
    lengths = np.arange(lower, upper + 1)
    # p (1-p)^(l-1) up to a constant factor; counting from `lower` keeps p = 1 well defined
    # (all mass on `lower`, the limit) where p (1-p)^(l-1) would be 0 for every l >= 2.
    weights = (1.0 - p) ** (lengths - lower)
    return weights / weights.sum()
