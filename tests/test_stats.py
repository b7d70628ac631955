"""keras_resnet.stats: describe, Student's t quantile and Welch's interval, by hand."""

import math
from fractions import Fraction

import pytest

from keras_resnet import stats

# Student's t quantiles from printed tables (and SciPy 1.17's t.ppf, which agrees to 1e-9).
KNOWN_QUANTILES = [
    (0.975, 1, 12.7062047), (0.975, 2, 4.3026527), (0.975, 4, 2.7764451),
    (0.975, 10, 2.2281389), (0.975, 30, 2.0422725), (0.975, 1000, 1.9623391),
    (0.95, 3, 2.3533634), (0.995, 5, 4.0321430), (0.9, 7, 1.4149239),
    # Non-integer degrees of freedom, as Welch's approximation gives (SciPy's t.ppf).
    (0.975, 2.5, 3.5746548), (0.975, 2028 / 427, 2.6119161),
]


@pytest.mark.parametrize("p, df, expected", KNOWN_QUANTILES)
def test_t_quantile_matches_tables(p, df, expected):
    assert stats.t_quantile(p, df) == pytest.approx(expected, abs=2e-7)
    assert stats.t_quantile(1 - p, df) == pytest.approx(-expected, abs=2e-7)


def test_t_quantile_approaches_the_normal_quantile():
    assert stats.t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)


def test_t_cdf_inverts_the_quantile():
    for p in (0.6, 0.9, 0.975, 0.999):
        assert stats.t_cdf(stats.t_quantile(p, 3.3), 3.3) == pytest.approx(p, abs=1e-10)


@pytest.mark.parametrize("p, df", [(0.0, 4), (1.0, 4), (0.975, 0), (0.975, -1)])
def test_t_quantile_rejects_bad_arguments(p, df):
    with pytest.raises(ValueError, match="Received"):
        stats.t_quantile(p, df)


def test_describe_uses_the_sample_standard_deviation():
    result = stats.describe([0.5973, 0.5583, 0.5597])
    assert result["mean"] == pytest.approx(0.571767, abs=1e-6)
    # sqrt(sum of squared deviations / (n - 1)), by hand: 0.02212...
    assert result["std"] == pytest.approx(0.0221243, abs=1e-6)
    assert (result["min"], result["max"], result["n"]) == (0.5583, 0.5973, 3)
    assert stats.describe([2.0])["std"] == 0.0
    with pytest.raises(ValueError):
        stats.describe([])


def test_welch_interval_by_hand():
    # a = 1..5: mean 3, variance 5/2; b = 2,4,6,8: mean 5, variance 20/3.
    # Shares: (5/2)/5 = 1/2 and (20/3)/4 = 5/3; their sum 13/6 is the squared standard error.
    # Welch-Satterthwaite: (13/6)^2 / ((1/2)^2/4 + (5/3)^2/3) = (169/36) / (427/432)
    # = 2028/427 = 4.7494...; t(0.975, 4.7494) = 2.6119, so 2 +- 2.6119 * 1.4720.
    a, b = stats.describe([1, 2, 3, 4, 5]), stats.describe([2, 4, 6, 8])
    result = stats.welch_interval(a, b)
    df = Fraction(169, 36) / (Fraction(1, 16) + Fraction(25, 27))
    assert df == Fraction(2028, 427)
    assert result["df"] == pytest.approx(float(df), rel=1e-12)
    assert result["standard_error"] == pytest.approx(math.sqrt(13 / 6), rel=1e-12)
    t = stats.t_quantile(0.975, float(df))
    assert result["t"] == pytest.approx(t)
    assert result["difference"] == pytest.approx(2.0)
    assert (result["low"], result["high"]) == pytest.approx(
        (2 - t * math.sqrt(13 / 6), 2 + t * math.sqrt(13 / 6)))
    assert (result["low"], result["high"]) == pytest.approx((-1.8446364, 5.8446364))
    assert not result["significant"]  # the interval contains 0


def test_welch_interval_flags_a_clear_difference():
    a = stats.describe([0.50, 0.51, 0.52, 0.50, 0.51])
    b = stats.describe([0.60, 0.61, 0.62, 0.60, 0.61])
    result = stats.welch_interval(a, b)
    assert result["significant"] and result["low"] > 0
    # Swapped, the interval is mirrored.
    swapped = stats.welch_interval(b, a)
    assert (swapped["low"], swapped["high"]) == pytest.approx((-result["high"], -result["low"]))
    assert swapped["significant"] and swapped["high"] < 0


def test_welch_interval_needs_two_values_per_group():
    with pytest.raises(ValueError, match="at least 2"):
        stats.welch_interval(stats.describe([1.0]), stats.describe([1.0, 2.0]))
