"""calops export of spectra: a stage-3 product becomes one JWST-named file per source (the
association's template filled), each opening in stdatamodels with its gwcs; a stage-2
product stays one file under the exposure's name."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "spec"))

from flows.export import _export_spectra  # noqa: E402
from store import fits as F  # noqa: E402
from store.identity import product_id  # noqa: E402

dm = pytest.importorskip("stdatamodels.jwst.datamodels")


def test_stage3_products_export_per_source_with_jwst_names(tmp_path):
    from test_spec_validation import REF, _fs_exposure, _plan

    from transforms import spec3

    rng = np.random.default_rng(11)
    cals = (_fs_exposure("S200A1", 0, rng), _fs_exposure("S200A2", 1, rng))
    out = spec3.run(cals, _plan("spec3", {"extract1d": REF}))
    subject = "jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}"
    written = []
    for kind in ("s2d", "x1d", "c1d"):
        written += _export_spectra(out[kind], subject, kind, {"build": "11.3"}, tmp_path)
    names = sorted(p.name for p in written)
    assert "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2_x1d.fits" in names
    assert "jw01234-o003_s00012_nirspec_f100lp-g140h-s200a2_c1d.fits" in names
    assert "jw01234-o003_s00021_nirspec_f100lp-g140h-s200a1_s2d.fits" in names
    assert len(names) == 9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s2d = dm.open(tmp_path / "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2_s2d.fits")
        x1d = dm.open(tmp_path / "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2_x1d.fits")
    assert type(s2d).__name__ == "SlitModel" and s2d.meta.wcs is not None
    ra, dec, lam = s2d.meta.wcs(10, 10)
    assert np.isfinite([ra, dec, lam]).all()
    assert type(x1d).__name__ == "MultiSpecModel" and x1d.spec[0].meta.wcs is not None
    assert F.read_provenance(written[0])["calops.build"] == "11.3"


def test_stage2_products_export_whole(tmp_path):
    import spec_synth as T

    from transforms.spec2 import resample_spec as rs

    cal = T.cal_product([T.make_slit(T.SlitSpec()), T.make_slit(T.SlitSpec(name="S200A2"))])
    s2d = rs.resample_spec(cal, {}, rs.ResampleSpecParams())
    (p,) = _export_spectra(s2d, "jw01234003001_01101_00001_nrs1", "s2d", {}, tmp_path)
    assert p.name == "jw01234003001_01101_00001_nrs1_s2d.fits"
    assert product_id(F.read_product(p)) == product_id(s2d)


def test_a_spec3_asn_keeps_jwsts_product_template_and_is_named_without_it():
    """The exported spec3 asn holds the product-name template that jwst and `calops stage`
    fill per source; its file is named without the template fields; an unsafe name is made
    safe all the same."""
    from flows.export import _product_name, untemplated

    t = "jw01234-o004_{source_id}_nirspec_f100lp-g140m-{slit_name}"
    assert untemplated(t) == "jw01234-o004_nirspec_f100lp-g140m"
    assert _product_name(t) == t
    assert _product_name("jw01234-o001_t001_nircam_clear-f150w") == \
        "jw01234-o001_t001_nircam_clear-f150w"
    unsafe = "../etc/{source_id}"
    assert "/" not in _product_name(unsafe) and "{" not in _product_name(unsafe)
