"""Golden product id of cube_build 1.2 (1.1 with the sky grid centred on every pixel of the
band, as jwst 3.0) on test_ifu_golden's MRS cal with its first two channel 1 slices blanked
(where 1.1's grid moves), in the same canonical form as 1.0/1.1's; and 1.2 = 1.0's pinned id
on 1.0's golden input (every pixel of the band good there)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
for p in (str(_HERE), str(_HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from golden_ids import GOLDEN, check, ids_of
from test_ifu_golden import SKY32, _no_sregion, mrs_cal, mrs_refs

from transforms import registry
from transforms.instruments.miri import mrs

pytest.importorskip("store.identity", reason="product ids come from store.identity")

PINNED = ("cube_build==1.2",)


def _blanked():
    cal = mrs_cal()
    px = mrs.pixels(mrs.mrs_params("MIRIFUSHORT", "SHORT"))
    d = np.array(cal["data"])
    d[np.isin(px.label, (101, 102))] = np.nan
    return cal.replace(arrays={"data": d})


def _cube(version, cal):
    spec = registry.get("cube_build", version)
    return spec.apply(cal, mrs_refs(), spec.make_params({"channel": "1"}))


def test_golden_product_id():
    check({"cube_build==1.2": ids_of(_no_sregion(_cube("1.2", _blanked())), SKY32)}, PINNED)


def test_v12_gives_v10s_cube_when_every_pixel_is_good():
    assert ids_of(_no_sregion(_cube("1.2", mrs_cal())), SKY32) == GOLDEN["cube_build==1.0"]


def test_v12_grid_ignores_the_blanked_slices_where_v11s_moves():
    a, b = _cube("1.1", _blanked()), _cube("1.2", _blanked())
    ref = _cube("1.2", mrs_cal())
    assert b.meta["wcsinfo.crval1"] == ref.meta["wcsinfo.crval1"]
    assert b.meta["wcsinfo.crval2"] == ref.meta["wcsinfo.crval2"]
    assert a.meta["wcsinfo.crval1"] != ref.meta["wcsinfo.crval1"]
