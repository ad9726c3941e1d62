"""``calops simulate`` writes uncal files that read back, a CRDS cache and the truth."""

import json

from flows.cli import main


def test_simulate_writes_everything(tmp_path, capsys):
    from store.fits import read_uncal

    out = tmp_path / "sim"
    assert main(["simulate", str(out), "--seed", "5", "--program", "small"]) == 0
    printed = capsys.readouterr().out
    uncals = sorted((out / "uncal").glob("jw*_uncal.fits"))
    assert len(uncals) == 7 and str(uncals[0]) in printed
    m = read_uncal(uncals[0])
    assert m["data"].dtype.name == "uint16" and m.get("ephemeris.type") == "PREDICTED"
    assert (out / "crds" / "mappings" / "jwst" / "jwst_0002.pmap").exists()
    truth = json.loads((out / "truth" / uncals[0].name.replace("_uncal.fits", "_truth.json"))
                       .read_text())
    assert truth["exposure"] == uncals[0].name and truth["sources"]
    exp = json.loads((out / "truth" / "expected_references.json").read_text())
    assert set(exp) == {"jwst_0001.pmap", "jwst_0002.pmap"}


def test_simulated_uncal_validates_in_stdatamodels(tmp_path):
    import warnings

    import pytest

    dm = pytest.importorskip("stdatamodels.jwst.datamodels",
                             reason="stdatamodels is the test-only reference implementation")
    from store.fits import write_uncal
    from transforms.sim.program import ExposureSpec, program_spec, reissue, simulate_program

    spec = program_spec("small", exposures=(ExposureSpec("NRCA1", "F150W", "CLEAR", "MEDIUM8",
                                                         "SUB64P", 2, 1, "2024-03-10T00:00:00"),))
    e = simulate_program(spec, 1).exposures[0]
    for model, name in ((e.uncal, "a_uncal.fits"), (reissue(e).uncal, "b_uncal.fits")):
        path = write_uncal(model, tmp_path / name)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            with dm.open(path, strict_validation=True) as m:
                m.validate()
                assert m.meta.exposure.readpatt == "MEDIUM8"
                assert m.meta.ephemeris.type == model.meta["ephemeris.type"]
