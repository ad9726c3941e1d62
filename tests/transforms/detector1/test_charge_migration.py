"""charge_migration: CHARGELOSS + DO_NOT_USE on the pixel and its 4 neighbours."""

import numpy as np
import pytest

from d1_helpers import DNU, ramp, same, snapshot
from transforms import dq as DQ
from transforms.detector1 import charge_migration
from transforms.detector1.charge_migration import ChargeMigrationParams

FLAG = DQ.CHARGELOSS | DQ.DO_NOT_USE


def test_flags_pixel_and_four_neighbours_from_the_group_over_threshold():
    data = np.full((1, 5, 7, 7), 100.0, np.float32)
    data[0, 2:, 3, 3] = 30000.0  # above the default 25000 from group 2 on
    data[0, 4:, 0, 0] = 26000.0  # a corner: only 2 neighbours exist
    model = ramp(data)
    before = snapshot(model)
    out = charge_migration.apply(model, {}, ChargeMigrationParams())
    assert same(model, before)
    gdq = out["groupdq"][0]
    expect = np.zeros(gdq.shape, bool)
    for y, x in ((3, 3), (2, 3), (4, 3), (3, 2), (3, 4)):
        expect[2:, y, x] = True
    for y, x in ((0, 0), (1, 0), (0, 1)):
        expect[4:, y, x] = True
    assert np.array_equal(gdq == FLAG, expect)
    assert np.array_equal(gdq != 0, expect)  # nothing else flagged (diagonals untouched)


def test_do_not_use_groups_do_not_trigger_and_threshold_is_a_parameter():
    data = np.full((1, 3, 3, 3), 100.0, np.float32)
    data[0, 1:, 1, 1] = 30000.0
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 1, 1, 1] = DNU  # group 1 already unusable: the flagging starts at group 2
    out = charge_migration.apply(ramp(data, gdq), {}, ChargeMigrationParams())
    assert out["groupdq"][0, 1, 0, 1] == 0 and out["groupdq"][0, 2, 0, 1] == FLAG
    high = charge_migration.apply(ramp(data), {}, ChargeMigrationParams(signal_threshold=40000))
    assert not high["groupdq"].any()


def test_matches_jwst_charge_migration():
    cm = pytest.importorskip("jwst.charge_migration.charge_migration",
                             reason="jwst (test-only) is the reference implementation")
    dm = pytest.importorskip("stdatamodels.jwst.datamodels", reason="test-only reference")
    jwst_cm = cm.charge_migration
    rng = np.random.default_rng(5)
    data = np.sort(rng.uniform(0, 32000, (2, 4, 12, 10)), axis=1).astype(np.float32)
    m = dm.RampModel(data=data.copy(), groupdq=np.zeros(data.shape, np.uint8),
                     pixeldq=np.zeros((12, 10), np.uint32))
    jwst_cm(m, 25000.0)
    out = charge_migration.apply(ramp(data), {}, ChargeMigrationParams())
    assert np.array_equal(out["groupdq"], m.groupdq)
