"""Two versions of one transform side by side: charge_migration 1.0 and the pre-build-10 0.9."""

from __future__ import annotations

import numpy as np

from transforms import dq as DQ
from transforms import registry
from transforms.model import DataModel


def _ramp():
    data = np.zeros((1, 4, 5, 5), np.float32)
    data[0, 2:, 2, 2] = 28000.0  # above 1.0's 25000 DN, below 0.9's 30000 DN
    data[0, 3:, 1, 1] = 31000.0  # above both
    return DataModel("ramp", {"data": data, "groupdq": np.zeros(data.shape, np.uint8),
                              "pixeldq": np.zeros((5, 5), np.uint32)}, {})


def test_both_versions_are_registered_and_differ_as_build_10_describes():
    assert registry.steps()["charge_migration"] == ["0.9", "1.0"]
    new, old = registry.get("charge_migration", "1.0"), registry.get("charge_migration", "0.9")
    assert new.make_params().signal_threshold == 25000.0
    assert old.make_params().signal_threshold == 30000.0
    flag = DQ.CHARGELOSS | DQ.DO_NOT_USE
    a = new.apply(_ramp(), {}, new.make_params())["groupdq"][0]
    b = old.apply(_ramp(), {}, old.make_params())["groupdq"][0]
    # 0.9: only the pixel above 30000 DN, from its first group over, no neighbours
    assert (b == flag).sum() == 1 and b[3, 1, 1] == flag
    # 1.0: both pixels and their 4 neighbours
    assert a[2, 2, 2] == flag and a[2, 1, 2] == flag and a[2, 2, 3] == flag
    assert a[3, 1, 1] == flag and a[3, 0, 1] == flag and a[1].max() == 0


def test_the_default_is_the_newest_version():
    assert registry.get("charge_migration").version == "1.0"
