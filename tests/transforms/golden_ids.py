"""The one table of golden product ids, and the helpers every golden test uses.

DESIGN.md: "A transform's version is bumped whenever its output can change for the same inputs.
A golden test per step pins the product_id of a small fixed input, so a silent change fails CI."

``GOLDEN`` maps ``"name==version"`` (a registered step, ``transforms.registry``) to the
product_id of that step's output on its golden test's fixed input; a step whose output is a
tuple of products (stage 3) pins a tuple of ids, one per product in order. Extra products of a
step are pinned under ``"name==version#what"`` (ramp_fit's rateints). Every registered
(name, version) must have an entry: ``test_golden_registry.py`` enforces it, and that every
entry is asserted by some golden test file.

Canonical ids (``canonical``, ``Canon``): where a step's output goes through WCS trigonometry
(numpy's SIMD sin/cos/arctan2) or least squares (OpenBLAS/LAPACK kernels chosen per CPU), its
last bits differ between machines. Measured here by re-running the goldens with other kernels
(``OPENBLAS_CORETYPE=Sandybridge|Prescott|Haswell|Zen``, ``NPY_DISABLE_CPU_FEATURES`` = the
AVX/AVX2/AVX-512 loops): tweakreg's fitted ``wcs.tweak`` values moved by up to 1.2e-11 (arcsec,
deg; absolute, even where the value is ~0), skymatch levels and source_catalog columns by
<= 6e-16 relative (orientation 2.5e-12 deg), resample's grid meta by 2.5e-10 relative and ~3%
of its float32 pixels by one unit in the last place (the sky -> pixel round trip through an RA
of 53 deg amplifies 1e-16 to ~1e-9). Those tests pin the id of the output rounded as their
``Canon`` says: every float64 value (arrays and metadata) to ``bits`` significant bits, also to
multiples of ``quantum`` where the noise is absolute, and float32 arrays too where asked.
The rounding is exact arithmetic (same result on every machine). A value flips with
probability ~noise/quantum; chosen so that this is <~5e-5 for the worst value measured and
~1e-6 typically: tweakreg 32 bits + quantum 2**-16 (1.5e-5), skymatch 32 bits (2.3e-10
relative), source_catalog 28 bits (3.7e-9 relative: its ellipticity of ~1e-3 carries 2e-16
absolute noise), resample 12 bits with float32 (2.4e-4 relative). Each such test also shows that a small real change still changes the canonical form.
Integer, bool and string values are always exact; steps with exact arithmetic pin exact ids.
``test_golden_registry.py`` re-runs every golden with Sandybridge BLAS and numpy's SIMD off.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import registry
from transforms.model import DataModel

FLOAT64_BITS = 32  # default significant bits kept of a float64 in canonical form
TABLE = "tests/transforms/golden_ids.py"

GOLDEN: dict[str, str | tuple[str, ...]] = {
    # --- detector1: test_detector1_golden.py (one chain, stage order; exact ids) ---
    "group_scale==1.0":
        "sha256:8fb48b7f096d1e1c9dbd502d5183eab5626f63e6232452810c173cc1e4b811db",
    "dq_init==1.0":
        "sha256:75972c50bdd2954ccb8cda5943df7df29684fa738f49c95a20f8b4ba2d194557",
    "saturation==1.0":
        "sha256:2bcd12384d0da73b209c49d674cb0d3ea45119266b3018a975dddf76a510e7d7",
    "superbias==1.0":
        "sha256:064a38fc28bad458214ef7de7d39ff60722786aabbc4c8a0a9002cf5b8880478",
    "refpix==1.0":
        "sha256:b0000007366e995de853645f4693e62317462839360ee3a443b458d1315e4c20",
    "linearity==1.0":
        "sha256:7319bc63fd45c90f8dbcf72aeea8732617dd0d6afb85f12d4339df84d10e27cb",
    "dark_current==1.0":
        "sha256:4bfeb3786e66191298982dc9af2108b8a66f50ecfbb65ee42a9e34be64b1c455",
    "charge_migration==1.0":
        "sha256:2233aa753477f108b2ce5e7eb973294db94aba0cbb8948e00c4eb3ae9aee9fd3",
    "clean_flicker_noise==1.0":
        "sha256:71062d96909a3eeceb1c22d28d13da7924bbdb0f493f8f36c14df3e073cd1d69",
    # side pins of test_detector1_golden.py (on the dark_current output, threshold 3000 DN)
    "charge_migration==0.9":
        "sha256:f19e7d0354a816e9d785399da2214e01915bd81b015fd8b160f1afe6fbfe9005",
    "charge_migration==1.0#flagging":
        "sha256:1a292263be66f04d6008e94b9fdc96da297acadd8e885dc637615b972f2439ff",
    # --- detector1: test_refpix_irs2_golden.py (IRS2 frames; on traditional ones = 1.0) ---
    "refpix==1.1":
        "sha256:5df04d3abac7193cb75ef066fdc7e2cc9022e71d8ecfc3a39d56459cd5b7882c",
    "refpix==0.9":
        "sha256:d72cd84d2be81bc6f8a3edeb4c620f6b221fe5eae13e585472af928067a4a000",
    # --- detector1: test_picture_frame_golden.py (exact id) ---
    "picture_frame==1.0":
        "sha256:a22bdc9b03767dde463acf787e2868a52080abad6fa852e2ea47362cd4a361e0",
    # --- detector1: test_ramp_fit_golden.py (exact ids) ---
    "jump==1.0":
        "sha256:aaa788853f2997d83d65950bd8f24fe4171fa4424afc106979bfc4e36e1fafeb",
    "ramp_fit==1.0":
        "sha256:5ed46daa27006f73db1a66414513ed662bd008868eaf90583e551b03e4640afd",
    "ramp_fit==1.0#rateints":
        "sha256:ca030cc619ce0e1c95b6be8553d5eb471fa5f0100f68ea814d9aaf8caaf9f57f",
    "gain_scale==1.0":
        "sha256:2f23bd2b64b5cbbff938efe6792c6f18741bb5e6f18903fe7e1f5002a10a5b14",
    # --- detector1: test_ipc_persistence_jump_golden.py (exact ids) ---
    "ipc==1.0":
        "sha256:6e9760e0437db2038f2ad37500d1171d4aa2747a9c430324c7174039ef8081de",
    "persistence==1.0":
        "sha256:b60767b079ecbc65e51f27a8832d47f35bbe481e920e3102f3fb8dde0e5d814c",
    "jump==1.1":
        "sha256:e66cf1c9fd31fc671f419496601c1f4fe672de63cc808bcd2a20223e5790651e",
    "ramp_fit==1.1":
        "sha256:3299d953dc356209276569c6649968aae14bba060941864724104bf46ceddbfe",
    "ramp_fit==1.1#rateints":
        "sha256:e9c367918060ab6e554310aa69949aef17506ee647e071cbddb2588cc19d7d6a",
    # --- detector1, MIRI: test_miri_golden.py (emicorr in canonical form, the others exact) ---
    "emicorr==1.0":
        "sha256:9323e6ddf765ad56393251a6df7a194633a881f50ade88fbd931ed7b7b940d84",
    "firstframe==1.0":
        "sha256:731da03898ed773845c12be02dffed1aad6799885e1081abd365a56e15a61418",
    "lastframe==1.0":
        "sha256:bdd87c53b5960f2cac660441875f505e0a0a93cfe5989a699f7e9f7c62b8acbc",
    "reset==1.0":
        "sha256:fee0d8abc2ffd0df7826cc9ad588e6e7a069f5d14a8e152af71e7005f3a34260",
    "rscd==1.0":
        "sha256:18de76e7dbdbbf906e6e1ed6b32df93d3798a8ceff738aa2b7e94b6393a533f7",
    # --- image2: test_image2_golden.py ---
    "assign_wcs==1.0":
        "sha256:f05ca26eab87c9dbaa6ceddd4e5c335d54da21d0998b33faf8d83cdd26f6b21a",
    "flat_field==1.0":
        "sha256:dcdf14a21cf61cdd61272bf7ad96671f8f3cc1eeecf2ec54a02e3728adb0c2d9",
    "photom==1.0":
        "sha256:2ba447aedbd83c55540b8d71286973f61a218e173ab8e05666d70ec0530eb1d4",
    "resample==1.0":
        "sha256:fc50dc7e2218729e0c066cb476f1c4d6e9931cb7ac91d331f0dc3942c0e53b89",
    # --- image2: image2/test_resample_v11_golden.py ---
    "resample==1.1":
        "sha256:ae37c149a3dddd1ab07d5da0741e930ad4b81f358c4fda24267785514556684a",
    # --- image3: test_image3_golden.py ---
    "tweakreg==1.0": (
        "sha256:f1fd4129eb49e621f130e66801536a9de5b78100e808f573ae64fa96964dae70",
        "sha256:848939690b16aa46093bc9bada951cd9950afce8b6d707ac4579e2ac30f57c2a",
        "sha256:f47fd2b13a2fe97bd252d456c8827b422be0bd0ab5cca7f2ca1188b1b4df7fe8",
    ),
    "skymatch==1.0": (
        "sha256:7e36ece2c0a216ff551f42f4dc6efb31801ba95b80901d3ed9ff20956737d97d",
        "sha256:55d3098f7f1bfe76c4d594f3d0b41cd8becad5ab9290c71b629d36a984013cf2",
        "sha256:af034dcba70deab06e5dc8aade8a3203015f80df42894e50d0ee339f0609ebfe",
    ),
    "outlier_detection==1.0": (
        "sha256:5f5c891976eef1a9219d8e8571e74be8aa96ba046cfbb015feb46077fb4c8938",
        "sha256:a197e49849ffcb74456ced37ec1bef7e8ce1d5a888da21fc8617b3fc07d9c303",
        "sha256:ead023a4ee48fc9e6c161083bb6fa632fa487c7e1c50e076e4163bb522d08727",
    ),
    "source_catalog==1.0":
        "sha256:58d885c5ad89318a808a5ede56a65cf5765154c41e0d498e4d63379e4c610317",
    # --- image3: test_source_catalog_v11_golden.py (1.0's measurements, jwst's layout) ---
    "source_catalog==1.1":
        "sha256:dc89caeff64096eecb86451921009fe4beb48e1ffc304917637c5b17cc16ec5e",
    # --- spectroscopy: spec/test_spec_golden.py ---
    "pixel_replace==1.0":
        'sha256:7bc987c025523ba03d0f9ddfc15d3010d37f2ce7b08688ce975d8f3f08d4edc6',
    "pixel_replace==1.0#mingrad":
        'sha256:8fdf1cbefec5724cbe4622d2311cc8780ffdfe94ba7866375b00490478c45178',
    "resample_spec==1.0":
        'sha256:1df3df1f3b9d2cfe7088e34ddf8d460870521edb4e99d336f45a72e32e02e917',
    "extract_1d==1.0":
        'sha256:f9b8a1d76b67f5f23b35a9c3d69f357ffa02cf063a48861547c78e8d35c71550',
    "combine_1d==1.0":
        'sha256:835d90ad6946c54c0973b908019bcbdf9dc9641be129e5426203dcce1d78b7e8',
    "master_background==1.0":
        ('sha256:3dd80a820768c3a8523c46e24073cdbed7fc169ef372c19bcff19343371668a1',),
    "outlier_detection==2.0":
        ('sha256:fca1c3fc9dccfdb45512781f1d63025036cf21a51bf1477116c267e96103b3a1', 'sha256:c706e3c575ade5898acd76364fe16ac1586fc3ceddc02e6ecc8c4c94a92d0bcb', 'sha256:07c54502b7b1703538ea5a5a79889ffbf1115787ae64d0c970cbb6aebeadbf48'),
    # --- spec2 front half: tests/transforms/spec2/test_spec2_front_golden.py (canonical ids;
    # a tuple = the FS, MOS and LRS inputs the step applies to) ---
    "assign_wcs==2.0": (
        "sha256:98f7b18c3a5262ec9d548ce5aba33046a97ad42a344955721eb8b8ec87e72d4c",
        "sha256:fd3c409e20c011b913e8d8517aa80e29769ba9ff9b0b2ec68a005ef57b5c26e9",
        "sha256:5530c988456fbb204b0f3ca41bcb8e8ffa7320a28853e663334c1c4954e5ae64",
    ),
    "msa_flagging==1.0":
        "sha256:c21cd09cf62df9d02d15ab0210f2d0398efab0be3e46ae86aded22eebdef11e8",
    "imprint_subtract==1.0":
        "sha256:5fcda42d538fb9ee603ef2a0bb162ed75ceddfd6b1ad3ecbee2e69d4f779dc38",
    # tests/transforms/spec2/test_imprint_v11_golden.py (exact ids: MOS science, its nod, IFU,
    # IFU flat lamp, fixed slit SKIPPED)
    "imprint_subtract==1.1": (
        "sha256:a341c29252bb15b9c1e67ff7b579bbfc9b83fb527cf38efef9d8778854887e1f",
        "sha256:59e57cb27020fc963753531b3756b8e1874b0253847b9622ed57483e0f5fdb28",
        "sha256:19bc937272eb19b6edab7bb3cdf1431f861a897ff6ccdad93d2657fd92afceaf",
        "sha256:51227850e8225e31e5e69276346087398612a2db0cd3a95ff9ed7739aa26659b",
        "sha256:79b7518a6a68e40b34e4ce2171edf3c26774d2db61fb019b9012760ca1681c01",
    ),
    "bkg_subtract==1.0": (
        "sha256:b5783c825a9284bdc1ee2b72f6646557efdad23650259cc696e7df0a29a1dca6",
        "sha256:51475acffdffd420bc50c58ce86b1d0682b4b9fa523d4d756542a35f209bdd1b",
    ),
    "extract_2d==1.0": (
        "sha256:85338ddcea95d0b245d516c5975877c29c2281c4f0ec8ed6e1d5a69a93c0c898",
        "sha256:c28e0ce80f511aec64af8157385e0364201bef687d127fc23e764718269ddd9e",
    ),
    "srctype==1.0": (
        "sha256:690b6c004f6b0644ab6913035c31cd5db6168f188984bbf3639b4435f9d8cda9",
        "sha256:aa13ae72d7ae1c77c7889d6b7982c8f230bf7ed75049b1aea92a53de99d2b54a",
        "sha256:245c59aff604a033bf51b6a48d1def107b1d762052676016c54494bef3d084fa",
    ),
    "wavecorr==1.0": (
        "sha256:fe6ee6400bd1517abbb8a7552d97b26836a3e9f53e04569eddfdee886deaf91d",
        "sha256:fa7d43ce73dca71ac8175543f9082d7a0123242ac8195aeaa9654e31b25f12a7",
    ),
    "flat_field==2.0": (
        "sha256:44c5d7af28a4647611e5a95c8845635bcf3cb600a1cc399fe68bc1faf5da5fb4",
        "sha256:f94212edd50546af3ce1ca8967aae488634ef5a00a87d543fc33014845e9110b",
        "sha256:552e60b7f21980da8d4a718ae2d80928fccb06316d89fd70b3e2dad86716590e",
    ),
    "pathloss==1.0": (
        "sha256:03aec0939185edb133925e348e2f076dd039919009f28724a37283bc9c30b820",
        "sha256:e92060c03b7708f6dfc40d07d237d5bf49ceaae9796ccfb1d6a1de14cede8620",
        "sha256:80315cb903eab16e1ef0663349deebe98ad9e42dff81c5fc40c16b05b3a71041",
    ),
    "barshadow==1.0":
        "sha256:6b2bf57358bc95071b2d1c0fed13863fc1d2f6e1564a1f5ed681ecefbfcc91dc",
    "photom==2.0": (
        "sha256:2fc848f89bd4d032f692cd5c593c758ef11b9c7370f9808de88cb769f3617aef",
        "sha256:9747452e870462fd57af51ee59ce2003a18494875c1bd65ea85351b3089a40b7",
        "sha256:ea1ce3d75f99c4fcce2c0015ab263e6d0184ec0f48b6a4a7e0c2bc5c27c00771",
    ),
    # --- IFU (MIRI MRS, NIRSpec IFU): ifu/test_ifu_golden.py (canonical form except spectral_leak) ---
    "assign_wcs==2.1":
        "sha256:bbaeb71c778d9d0e377b28eeaa33779222d361b3068372db3fa65f9c5a4a0584",
    "assign_wcs==2.1#nrs_ifu":
        "sha256:2800c31d306f043ea675e5e7235dd2d6a354af0fa7499af2a08abba693aac42e",
    "msa_flagging==1.1":
        "sha256:921203392b7e2dbc22f5bb83e616a619a714497bd268924e6b021acd230bbe17",
    "straylight==1.0":
        "sha256:a9b40f7f1fa4bb36869d877be8d9d836c788e907385c2d89539de6c29f7e2739",
    "flat_field==2.1":
        "sha256:81ad83c02dc2c3d39a1b5f132371a591caf7a709f8319b61d6a030e35abed9dd",
    "flat_field==2.1#nrs_ifu_photom":
        "sha256:d268d50420afa99f026e8aaa30c4df2adb399b1dc65e5722295f818a94c4986d",
    "fringe==1.0":
        "sha256:6635a341060953e64f80ceafc2f46d753a288a9abf8719e30d596e019a92aee6",
    "photom==2.1":
        "sha256:7934004205e42341de7f1382ed1b3e7cea6110b3927c63af7fd8ef2e9d26120a",
    "residual_fringe==1.0":
        "sha256:c2c3020b934a53e0ee07af7fb02026da8db7192f1bd3f3afa857c7d6c223b5a9",
    "pixel_replace==1.1":
        "sha256:ce8d41318f66e030df427865f6a5d740c8af56662c9b94c143f6be9129d046da",
    "cube_build==1.0":
        "sha256:56db71d571a4d36047628a5c8a4b89297a57a7834f9fe2db057384f6042db6c0",
    "cube_build==1.1":
        "sha256:51d9b732717c134592c5bbd49fa1c587b008e9f9c1537005788bf201252bd6ac",
    "cube_build==1.2":
        "sha256:a84528b3f3cb68a37504eacab7c128ab61ae801f1ff85ac635677150821b7240",
    "extract_1d==1.1":
        "sha256:08dd4066b7a4e5f7a70679bf384b379d0f4475e12e8db8f6cd16934b668a96ad",
    "extract_1d==1.2":
        "sha256:80e629ab0af07e1a7c21db4f817ddfb444fb6aa55f95e271c71e345feb080397",
    "master_background==1.1":
        ('sha256:fff6a67821b5ef46ffc70409aae989dfcce80230519ea1aaf4cc1fd8d4a4caee',
         'sha256:f03971de831552d502d96cf4aaf3db6bdd0407858c32591d041b6095323d85db'),
    "outlier_detection==2.1":
        ('sha256:d09b5e25f090f96c46e698927702d7a48509d308d66260a25c1aadeb2baef1ec',
         'sha256:12acf82ff89fdac6f5b6d5404f24408c934aafd59286e4231d9771b4b75042ef'),
    # --- issue #15: spec/test_spec_v11_golden.py (an LRS-shaped single-slit cal) ---
    "resample_spec==1.1":
        "sha256:e3f220ef095ce6b10d866f0caeafd52ec7c81af904e01a2c35b6bcbd4364ea04",
    "outlier_detection==2.2":
        ("sha256:a4236ca55dd80ffe83e7006ccc3e12b440b16053019940dc8f7ec8429e950cdd",
         "sha256:19e72cf6b98d001840cf1ae4618c3d184971561c64a6cee9394f3c9827f77109",
         "sha256:dbe126d3dbf9d7235b2cc772627be09f6713ab72c2256e09f865c2d734cbf538"),
    "master_background==1.2":
        ("sha256:bedea20661d9707fd5c657e8ea9c81f9b72695e445f1f2047ef941c2f3063792",),
    "spectral_leak==1.0":
        "sha256:857fa71eeb53f1985462f49715ae1fd8bbe73c281afff016dee0f1388f654a77",
}


def key(name: str, version: str) -> str:
    """The table key of a step version."""
    return f"{name}=={version}"


def split_key(k: str) -> tuple[str, str]:
    """(name, version) of a table key (any ``#what`` suffix dropped)."""
    base = k.split("#", 1)[0]
    name, sep, version = base.partition("==")
    if not sep or not name or not version:
        raise ValueError(f"golden key {k!r} is not 'name==version' or 'name==version#what'")
    return name, version


def step_source(name: str, version: str) -> str:
    """The source file of a registered step (for failure messages)."""
    try:
        mod = registry.get(name, version).apply.__module__
    except registry.UnknownStep:
        return "transforms/"
    return mod.replace(".", "/") + ".py"


# --- canonical form ------------------------------------------------------------------------

@dataclass(frozen=True)
class Canon:
    """How a golden test rounds a step's output before hashing (see the module docstring).

    ``bits``: significant bits kept of every float64 value (arrays and metadata);
    ``quantum``: also round those values to multiples of this power of two (for values whose
    CPU noise is absolute, such as fitted shifts near zero; 0 = off);
    ``float32``: round float32 arrays to ``bits`` too (else they are hashed exactly).
    """

    bits: int = FLOAT64_BITS
    quantum: float = 0.0
    float32: bool = False


def round_bits(a: Any, bits: int = FLOAT64_BITS, quantum: float = 0.0) -> np.ndarray:
    """A float64 copy of ``a`` rounded to ``bits`` significant bits (round half to even), then
    to multiples of ``quantum`` (a power of two, or 0 for none).

    Exact arithmetic: mantissas from ``frexp`` are scaled by powers of two, rounded and scaled
    back, so the result is the same on every machine. NaN and inf are kept.
    """
    a64 = np.array(a, dtype=np.float64, copy=True)
    m, e = np.frexp(a64)
    scale = float(2 ** bits)
    with np.errstate(invalid="ignore", over="ignore"):  # near DBL_MAX rounding may give inf
        out = np.ldexp(np.round(m * scale) / scale, e)
        if quantum:
            if np.frexp(quantum)[0] != 0.5:
                raise ValueError(f"quantum must be a power of two, got {quantum!r}")
            out = np.where(np.isfinite(out), np.round(out / quantum) * quantum, out)
    return out


def _canon_value(v: Any, c: Canon) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return float(round_bits(v, c.bits, c.quantum))
    if isinstance(v, Mapping):
        return {k: _canon_value(x, c) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_canon_value(x, c) for x in v)
    return v


def canonical(model: DataModel, canon: Canon = Canon()) -> DataModel:
    """``model`` with its floats rounded as ``canon`` says; the input is not mutated.

    float64 arrays and float metadata are rounded; float32 arrays only when ``canon.float32``
    (and keep their dtype); integers, bools and strings are unchanged.
    """
    def arr(a: np.ndarray) -> np.ndarray:
        if a.dtype == np.float64:
            return round_bits(a, canon.bits, canon.quantum)
        if a.dtype == np.float32 and canon.float32:
            return round_bits(a, canon.bits, canon.quantum).astype(np.float32)
        return a

    arrays = {n: arr(np.asarray(a)) for n, a in model.arrays.items()}
    meta = {k: _canon_value(v, canon) for k, v in model.meta.items()}
    return DataModel(model.kind, arrays, meta)


def ids_of(out: DataModel | tuple[DataModel, ...], canon: Canon | None = None
           ) -> str | tuple[str, ...]:
    """The product id of a step's output (a tuple of ids for a tuple of products), of its
    canonical form when ``canon`` is given."""
    from store.identity import product_id

    def one(m: DataModel) -> str:
        return product_id(canonical(m, canon) if canon is not None else m)

    if isinstance(out, DataModel):
        return one(out)
    return tuple(one(m) for m in out)


# --- the check ---------------------------------------------------------------------------

def mismatches(got: Mapping[str, str | tuple[str, ...]]) -> list[str]:
    """One line per golden key whose pinned id differs from ``got`` (in ``got``'s order)."""
    lines = []
    for k, gid in got.items():
        want = GOLDEN.get(k)
        if want == gid:
            continue
        name, version = split_key(k)
        lines.append(
            f"the output of {name} {version} changed: if intended, bump its version in "
            f"{step_source(name, version)} and update the golden id {k!r} in {TABLE}; "
            f"pinned {want!r}, got {gid!r}")
    return lines


def check(got: Mapping[str, str | tuple[str, ...]], pinned: tuple[str, ...] | None = None
          ) -> None:
    """Assert that every id in ``got`` equals its pinned golden; the message says what to do.

    ``pinned``: the keys the calling test file declares (its ``PINNED``); ``got`` must cover
    exactly those. In a chained golden (one step's output is the next one's input) the first
    line names the step that changed; the lines after it may only follow from it.
    """
    if pinned is not None:
        assert set(got) == set(pinned), (
            f"this golden test computes {sorted(got)} but declares PINNED {sorted(pinned)}")
    bad = mismatches(got)
    assert not bad, "\n".join(bad)


def golden_cases(cases: Mapping[str, tuple[Callable[[], Any], Canon | None]]
                 ) -> tuple[Callable[[str], Any], Callable[[str], None]]:
    """A golden file's ``CASES`` ({key: (make, canon)}) as ``(first, test)``: ``first(key)`` is
    the case's first product (cached: outputs are immutable, so the file's other tests share
    it); ``test`` pins each key's id and checks that a second run gives the same exact ids.
    Use as ``_first, test_golden_product_id = golden_cases(CASES)``."""
    import pytest

    first = functools.cache(lambda key: cases[key][0]())

    @pytest.mark.parametrize("key", list(cases))
    def test_golden_product_id(key: str) -> None:
        make, canon = cases[key]
        out = first(key)
        check({key: ids_of(out, canon)})
        assert ids_of(make()) == ids_of(out), f"{key} is not deterministic: two runs, two outputs"

    return first, test_golden_product_id
