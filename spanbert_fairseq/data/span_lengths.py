"""The span-length distribution: a geometric truncated to [lower, upper] and renormalised."""

import numpy as np


def span_length_probs(p=0.2, lower=1, upper=10):
    """P(len = l) for l in lower..upper, proportional to p (1-p)^(l-1).

    SPEC section 2: renormalised over the support (a truncated geometric), not clipped.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"--geometric-p must lie in (0, 1], got {p}")
    if lower < 1 or upper < lower:
        raise ValueError(f"need 1 <= --span-lower <= --span-upper, got {lower}..{upper}")
    lengths = np.arange(lower, upper + 1)
    # p (1-p)^(l-1) up to a constant factor; counting from `lower` keeps p = 1 well defined
    # (all mass on `lower`, the limit) where p (1-p)^(l-1) would be 0 for every l >= 2.
    weights = (1.0 - p) ** (lengths - lower)
    return weights / weights.sum()


def span_lengths(lower=1, upper=10):
    return np.arange(lower, upper + 1)
