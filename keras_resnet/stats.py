"""Small statistics for repeated runs: summaries, Student's t quantile, Welch's interval.

Pure Python (no SciPy, which is not a dependency). The t quantile inverts the t CDF, which
is written with the regularized incomplete beta function (Numerical Recipes' continued
fraction), by bisection; it agrees with SciPy's `t.ppf` to 1e-9 over df >= 1.
"""

import math


def describe(values):
    """Mean, sample standard deviation, min, max and count of `values`.

    Args:
        values: sequence of numbers (at least one).

    Returns:
        dict with `mean`, `std` (n - 1 in the denominator; 0.0 for one value), `min`,
        `max`, `n`.

    Raises:
        ValueError: if `values` is empty.

    Example:

    >>> describe([1.0, 2.0, 3.0])
    {'mean': 2.0, 'std': 1.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("describe() needs at least one value. Received: values=[]")
    n = len(values)
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"mean": mean, "std": math.sqrt(variance), "min": min(values), "max": max(values),
            "n": n}


def _beta_continued_fraction(a, b, x):
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def incomplete_beta(a, b, x):
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    # The fraction converges fast on this side of the mean; use the symmetry on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """Student's t cumulative distribution function with `df` (> 0, real) degrees of freedom.

    Example:

    >>> round(t_cdf(0.0, 3), 6)
    0.5
    """
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The `p` quantile of Student's t with `df` (> 0, real) degrees of freedom.

    Args:
        p: float in (0, 1).
        df: float > 0; non-integer values (Welch-Satterthwaite) are fine.

    Returns:
        float `t` with `t_cdf(t, df) == p`.

    Raises:
        ValueError: if `p` is not in (0, 1) or `df` is not positive.

    Example:

    >>> round(t_quantile(0.975, 4), 4)
    2.7764
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1. Received: p={p}")
    if not df > 0:
        raise ValueError(f"t_quantile needs positive degrees of freedom. Received: df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


def welch_interval(a, b, confidence=0.95):
    """Difference of means `mean(b) - mean(a)` with Welch's t confidence interval.

    Welch's interval does not assume equal variances; its degrees of freedom are the
    Welch-Satterthwaite approximation
    `(va/na + vb/nb)^2 / ((va/na)^2/(na-1) + (vb/nb)^2/(nb-1))`.

    Args:
        a: dict with `mean`, `std`, `n` (as from `describe`), n >= 2.
        b: the same for the other group.
        confidence: float in (0, 1). Defaults to `0.95`.

    Returns:
        dict with `difference`, `low`, `high`, `df`, `standard_error`, `t` (the quantile
        used) and `significant` (the interval excludes 0).

    Raises:
        ValueError: if a group has fewer than 2 values or `confidence` is not in (0, 1).

    Example:

    >>> a = describe([0.56, 0.58, 0.57])
    >>> b = describe([0.60, 0.61, 0.62])
    >>> result = welch_interval(a, b)
    >>> round(result["difference"], 4), result["significant"]
    (0.04, True)
    """
    for group in (a, b):
        if group["n"] < 2:
            raise ValueError("A confidence interval needs at least 2 values per group. "
                             f"Received: n={group['n']}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1). Received: confidence={confidence}")
    share_a = a["std"] ** 2 / a["n"]
    share_b = b["std"] ** 2 / b["n"]
    difference = b["mean"] - a["mean"]
    variance = share_a + share_b
    if variance == 0.0:
        # Identical repeats on both sides: no noise to speak of.
        return {"difference": difference, "low": difference, "high": difference,
                "df": math.inf, "standard_error": 0.0, "t": math.nan,
                "significant": difference != 0.0}
    df = variance ** 2 / (share_a ** 2 / (a["n"] - 1) + share_b ** 2 / (b["n"] - 1))
    t = t_quantile(0.5 + confidence / 2.0, df)
    error = math.sqrt(variance)
    low, high = difference - t * error, difference + t * error
    return {"difference": difference, "low": low, "high": high, "df": df,
            "standard_error": error, "t": t, "significant": low > 0.0 or high < 0.0}
