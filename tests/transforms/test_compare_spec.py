"""Spectrum-aware comparison (transforms.compare_spec): pairing, wavelength shifts in pixels,
flux ratios, tolerance, NaN and DO_NOT_USE changes, different grids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms import compare as cmp
from transforms import compare_spec as C
from transforms import dq as DQ
from transforms import spectral as S


def _x1d(specs: dict, kind: str = "x1d"):
    out = []
    for name, (w, f) in specs.items():
        n = len(w)
        out.append(S.Spectrum(name, {"wavelength": np.asarray(w, float),
                                     "flux": np.asarray(f, float),
                                     "flux_error": np.full(n, 0.01),
                                     "dq": np.where(np.isnan(f), DQ.DO_NOT_USE, 0
                                                    ).astype(np.uint32)}, {}))
    return S.spectra_product(kind, {}, out)


W = 1.0 + np.arange(200) * 1e-3
F = 1.0 + 0.2 * np.sin(W * 40)


def test_identical_spectra_do_not_move():
    d = C.compare_spectra(_x1d({"s00001": (W, F)}), _x1d({"s00001": (W, F)}))
    (p,) = d.pairs
    assert not p.moved and p.n_over == 0 and p.ratio_median == 1.0 and p.wl_shift_pix == 0.0
    assert d.moved == () and d.only_a == d.only_b == ()


def test_a_flux_change_moves_with_its_ratio():
    d = C.compare_spectra(_x1d({"a": (W, F)}), _x1d({"a": (W, F * 1.01)}))
    (p,) = d.pairs
    assert p.moved and p.n_over == 200 and p.n_compared == 200
    assert p.ratio_median == pytest.approx(1.01) and p.ratio_max_dev == pytest.approx(0.01)
    assert set(p.plot) == {"wavelength", "a", "b"} and p.plot["a"].size == 200


def test_changes_within_tolerance_do_not_move():
    cfg = cmp.CompareConfig(tolerance=cmp.Tolerance(rtol=1e-3, atol=0))
    (p,) = C.compare_spectra(_x1d({"a": (W, F)}), _x1d({"a": (W, F * 1.0005)}), cfg).pairs
    assert not p.moved and p.n_over == 0


def test_a_wavelength_shift_is_measured_in_pixels():
    (p,) = C.compare_spectra(_x1d({"a": (W, F)}), _x1d({"a": (W + 0.25e-3, F)})).pairs
    assert p.wl_shift_pix == pytest.approx(0.25, rel=1e-6) and p.moved


def test_different_grids_are_compared_where_they_overlap():
    w2 = W[::2] + 0.5e-3
    f2 = np.interp(w2, W, F) * 0.98
    (p,) = C.compare_spectra(_x1d({"a": (W, F)}), _x1d({"a": (w2, f2)})).pairs
    assert p.n_a == 200 and p.n_b == 100 and p.moved
    assert p.ratio_median == pytest.approx(0.98, rel=1e-3)


def test_nan_and_do_not_use_changes_are_counted_and_unpaired_spectra_listed():
    f2 = F.copy()
    f2[[3, 7]] = np.nan
    d = C.compare_spectra(_x1d({"a": (W, F), "b": (W, F)}), _x1d({"a": (W, f2), "c": (W, F)}))
    (p,) = d.pairs
    assert p.nan_only_b == 2 and p.dnu_gained == 2 and p.moved
    assert d.only_a == ("b",) and d.only_b == ("c",)
    assert d.to_dict()["moved"] == ["a"]


def test_c1d_and_refusal_of_other_kinds():
    a = S.spectra_product("c1d", {}, [S.Spectrum("s", {"wavelength": W, "flux": F,
                                                       "error": F * 0}, {})], single=True)
    (p,) = C.compare_spectra(a, a).pairs
    assert not p.moved
    with pytest.raises(cmp.CompareError, match="x1d/c1d"):
        C.compare_spectra(S.spectra_product("x1d", {}, []).replace(kind="cal"), a)


@given(st.floats(0.5, 2.0), st.integers(10, 300))
def test_the_ratio_is_the_scale(scale, n):
    w = 1.0 + np.arange(n) * 1e-3
    f = 1.0 + np.cos(w * 30) ** 2
    (p,) = C.compare_spectra(_x1d({"a": (w, f)}), _x1d({"a": (w, f * scale)}),
                             max_points=50).pairs
    assert p.ratio_median == pytest.approx(scale) and p.plot.get("a", np.zeros(0)).size <= 50
