"""tweakreg: align exposures to one another (and optionally to an absolute catalogue).

Sources are found in each exposure (``detect.find_stars``), put on the sky with the exposure's
un-tweaked WCS, and projected onto ONE tangent plane shared by the whole association (arcsec,
``xi`` toward east, ``eta`` toward north). Exposures are then aligned one by one to a growing
reference catalogue, as tweakwcs does: the one with most sources starts it; each next exposure
is matched (2-D histogram of pair offsets for the initial shift, then nearest neighbours within
``tolerance``), fitted with ``fitgeometry`` with sigma clipping, and its sources join the
reference catalogue. With an absolute catalogue, the aligned group is then fitted to it as one.

The result is recorded, not resampled. The fit is a ``Tweak``: ``(xi', eta') = matrix @ (xi,
eta) + (dx, dy)`` in the tangent plane about ``(ra_tp, dec_tp)``, kept as ``wcs.tweak["sky"]``
(``apply_tweak`` applies it to sky positions). ``transforms.wcs`` applies tweaks in the V2/V3
plane (``matrix``, ``shift`` about v2/v3_ref), so ``v2v3_tweak`` converts each exposure's sky
correction into that form; ``transforms.wcs.wcs_of`` then returns the corrected WCS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from transforms.image3.detect import Stars, find_stars
from transforms.model import DataModel
from transforms.registry import register

GEOMETRIES = ("shift", "rshift", "rscale", "general")
_MIN_POINTS = {"shift": 1, "rshift": 2, "rscale": 2, "general": 3}


class TweakregError(ValueError):
    """Bad tweakreg input (parameters or catalogues)."""


@dataclass(frozen=True)
class TweakregParams:
    """JWST tweakreg parameters (jwst 1.x/3.0 spec defaults) that calops implements."""

    starfinder: str = "iraf"  # only "iraf" (IRAFStarFinder, JWST's default) is implemented
    snr_threshold: float = 10.0
    kernel_fwhm: float = 2.5
    bkg_boxsize: int = 400
    minsep_fwhm: float = 0.0
    sigma_radius: float = 1.5
    sharplo: float = 0.5
    sharphi: float = 2.0
    roundlo: float = 0.0
    roundhi: float = 0.2
    brightest: int = 200
    peakmax: float | None = None
    enforce_user_order: bool = False
    expand_refcat: bool = False
    minobj: int = 15
    fitgeometry: str = "rshift"
    nclip: int = 3
    sigma: float = 3.0
    searchrad: float = 2.0
    use2dhist: bool = True
    separation: float = 1.0
    tolerance: float = 0.7
    xoffset: float = 0.0
    yoffset: float = 0.0
    abs_refcat: str = ""
    abs_minobj: int = 15
    abs_fitgeometry: str = "rshift"
    abs_nclip: int = 3
    abs_sigma: float = 3.0
    abs_searchrad: float = 6.0
    abs_use2dhist: bool = True
    abs_separation: float = 1.0
    abs_tolerance: float = 0.7


GOOD_BITS = "~DO_NOT_USE"  # pixels flagged DO_NOT_USE never produce a detection


# --------------------------------------------------------------------------------------------
# Tangent plane


def to_plane(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection of (ra, dec) degrees about (ra0, dec0) -> (xi, eta) arcsec."""
    ra = np.radians(np.asarray(ra, dtype=np.float64))
    dec = np.radians(np.asarray(dec, dtype=np.float64))
    a0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = math.sin(d0) * np.sin(dec) + math.cos(d0) * np.cos(dec) * np.cos(ra - a0)
    xi = np.cos(dec) * np.sin(ra - a0) / cosc
    eta = (math.cos(d0) * np.sin(dec) - math.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cosc
    k = math.degrees(1.0) * 3600.0
    return xi * k, eta * k


def from_plane(xi, eta, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``to_plane``: (xi, eta) arcsec -> (ra, dec) degrees."""
    k = math.degrees(1.0) * 3600.0
    x = np.asarray(xi, dtype=np.float64) / k
    y = np.asarray(eta, dtype=np.float64) / k
    a0, d0 = math.radians(ra0), math.radians(dec0)
    den = math.cos(d0) - y * math.sin(d0)
    ra = a0 + np.arctan2(x, den)
    dec = np.arctan2(math.sin(d0) + y * math.cos(d0), np.hypot(x, den))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def sky_center(ra, dec) -> tuple[float, float]:
    """Mean direction of a set of sky positions (degrees), robust to the RA wrap."""
    ra = np.radians(np.asarray(ra, dtype=np.float64))
    dec = np.radians(np.asarray(dec, dtype=np.float64))
    v = np.array([np.sum(np.cos(dec) * np.cos(ra)), np.sum(np.cos(dec) * np.sin(ra)),
                  np.sum(np.sin(dec))])
    v /= np.linalg.norm(v)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(np.degrees(np.arcsin(v[2])))


# --------------------------------------------------------------------------------------------
# The correction and its meta form


@dataclass(frozen=True)
class Tweak:
    """An affine tangent-plane correction: (xi', eta') = matrix @ (xi, eta) + (dx, dy)."""

    ra_tp: float
    dec_tp: float
    matrix: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.0), (0.0, 1.0))
    dx: float = 0.0  # arcsec
    dy: float = 0.0  # arcsec

    @property
    def rotation_deg(self) -> float:
        (a, b), (c, d) = self.matrix
        return math.degrees(math.atan2(c - b, a + d))

    @property
    def scale(self) -> float:
        (a, b), (c, d) = self.matrix
        return math.sqrt(abs(a * d - b * c))

    def then(self, other: "Tweak") -> "Tweak":
        """This correction followed by ``other`` (same tangent plane)."""
        m1, m2 = np.array(self.matrix), np.array(other.matrix)
        m = m2 @ m1
        s = m2 @ np.array([self.dx, self.dy]) + np.array([other.dx, other.dy])
        return Tweak(self.ra_tp, self.dec_tp, _mat(m), float(s[0]), float(s[1]))

    def apply_plane(self, xi, eta) -> tuple[np.ndarray, np.ndarray]:
        (a, b), (c, d) = self.matrix
        xi = np.asarray(xi, dtype=np.float64)
        eta = np.asarray(eta, dtype=np.float64)
        return a * xi + b * eta + self.dx, c * xi + d * eta + self.dy

    def to_meta(self, **extra) -> dict:
        out = {"ra_tp": self.ra_tp, "dec_tp": self.dec_tp,
               "matrix": [list(r) for r in self.matrix], "dx": self.dx, "dy": self.dy,
               "rotation_deg": self.rotation_deg, "scale": self.scale}
        out.update(extra)
        return out

    @classmethod
    def from_meta(cls, meta: dict) -> "Tweak":
        try:
            m = meta.get("matrix")
            if m is None:  # shift/rotation/scale form
                th = math.radians(float(meta.get("rotation_deg", 0.0)))
                s = float(meta.get("scale", 1.0))
                m = ((s * math.cos(th), -s * math.sin(th)), (s * math.sin(th), s * math.cos(th)))
            return cls(float(meta["ra_tp"]), float(meta["dec_tp"]), _mat(np.array(m, float)),
                       float(meta.get("dx", 0.0)), float(meta.get("dy", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise TweakregError(f"wcs.tweak meta is malformed ({exc}); expected ra_tp, dec_tp, "
                                "matrix or rotation_deg/scale, dx, dy") from exc


def _mat(m: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    return ((float(m[0, 0]), float(m[0, 1])), (float(m[1, 0]), float(m[1, 1])))


def apply_tweak(ra, dec, tweak: dict | Tweak) -> tuple[np.ndarray, np.ndarray]:
    """Corrected sky positions (degrees) for positions from the un-tweaked WCS."""
    t = tweak if isinstance(tweak, Tweak) else Tweak.from_meta(dict(tweak))
    xi, eta = to_plane(ra, dec, t.ra_tp, t.dec_tp)
    return from_plane(*t.apply_plane(xi, eta), t.ra_tp, t.dec_tp)


# --------------------------------------------------------------------------------------------
# Matching


def _isolated(xy: np.ndarray, separation: float) -> np.ndarray:
    """Indices of points with no neighbour closer than ``separation`` (ambiguous ones dropped)."""
    if len(xy) < 2 or separation <= 0:
        return np.arange(len(xy))
    from scipy.spatial import cKDTree  # imported where used: every stage run imports this module

    d, _ = cKDTree(xy).query(xy, k=2)
    return np.flatnonzero(d[:, 1] >= separation)


def initial_offset(src: np.ndarray, ref: np.ndarray, searchrad: float, tolerance: float,
                   guess: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """The most common pair offset ref - src within ``searchrad`` of ``guess`` (2-D histogram)."""
    if len(src) == 0 or len(ref) == 0:
        return guess
    from scipy.spatial import cKDTree

    g = np.asarray(guess, dtype=np.float64)
    tree = cKDTree(ref)
    pairs = tree.query_ball_point(src + g, r=searchrad)
    diffs = [ref[j] - src[i] for i, js in enumerate(pairs) for j in js]
    if not diffs:
        return guess
    d = np.array(diffs)
    width = max(tolerance / 2.0, 1e-6)
    nb = max(int(np.ceil(2 * searchrad / width)), 1)
    h, xe, ye = np.histogram2d(d[:, 0], d[:, 1], bins=nb,
                               range=[[g[0] - searchrad, g[0] + searchrad],
                                      [g[1] - searchrad, g[1] + searchrad]])
    # smooth by 3x3 so a peak split over bin edges is still found
    from scipy.ndimage import uniform_filter

    hs = uniform_filter(h, size=3, mode="constant")
    i, j = np.unravel_index(int(np.argmax(hs)), hs.shape)
    peak = np.array([(xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2])
    near = np.hypot(*(d - peak).T) <= tolerance
    return tuple(float(v) for v in (np.median(d[near], axis=0) if near.any() else peak))


def match(src: np.ndarray, ref: np.ndarray, *, searchrad: float, separation: float,
          tolerance: float, use2dhist: bool = True, guess: tuple[float, float] = (0.0, 0.0)
          ) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches (indices into src, ref) of two (n, 2) position lists in arcsec."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1, 2)
    empty = (np.zeros(0, int), np.zeros(0, int))
    si, ri = _isolated(src, separation), _isolated(ref, separation)
    if si.size == 0 or ri.size == 0:
        return empty
    s, r = src[si], ref[ri]
    off = initial_offset(s, r, searchrad, tolerance, guess) if use2dhist else guess
    from scipy.spatial import cKDTree

    d, j = cKDTree(r).query(s + np.asarray(off), k=1, distance_upper_bound=tolerance)
    ok = np.isfinite(d)
    i_ok, j_ok, d_ok = np.flatnonzero(ok), j[ok], d[ok]
    # one-to-one: each reference keeps its closest source
    order = np.lexsort((i_ok, d_ok))
    _, first = np.unique(j_ok[order], return_index=True)
    keep = np.sort(order[first])
    return si[i_ok[keep]], ri[j_ok[keep]]


# --------------------------------------------------------------------------------------------
# Fitting


@dataclass(frozen=True)
class Fit:
    matrix: np.ndarray  # 2x2
    shift: np.ndarray  # (2,)
    rms: float  # arcsec, of the points kept
    used: np.ndarray  # bool mask of the points kept after clipping


def _solve(src: np.ndarray, ref: np.ndarray, geometry: str) -> tuple[np.ndarray, np.ndarray]:
    sc, rc = src.mean(axis=0), ref.mean(axis=0)
    if geometry == "shift":
        return np.eye(2), rc - sc
    a, b = src - sc, ref - rc
    if geometry in ("rshift", "rscale"):
        num = np.sum(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
        den = np.sum(a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1])
        th = math.atan2(num, den)
        rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        s = 1.0
        if geometry == "rscale":
            norm = np.sum(a * a)
            s = float(np.sum(b * (a @ rot.T)) / norm) if norm > 0 else 1.0
        m = s * rot
    else:  # general affine
        m_t, *_ = np.linalg.lstsq(a, b, rcond=None)
        m = m_t.T
    return m, rc - m @ sc


def fit(src: np.ndarray, ref: np.ndarray, geometry: str = "rshift", nclip: int = 3,
        sigma: float = 3.0) -> Fit:
    """Fit ref ~ matrix @ src + shift with ``nclip`` rounds of ``sigma`` clipping."""
    if geometry not in GEOMETRIES:
        raise TweakregError(f"fitgeometry {geometry!r} is not one of {', '.join(GEOMETRIES)}")
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1, 2)
    if len(src) < _MIN_POINTS[geometry]:
        raise TweakregError(f"fitgeometry {geometry} needs at least {_MIN_POINTS[geometry]} "
                            f"matched sources, got {len(src)}")
    used = np.ones(len(src), bool)
    for it in range(nclip + 1):
        m, t = _solve(src[used], ref[used], geometry)
        resid = np.hypot(*(ref - (src @ m.T + t)).T)
        rms = float(np.sqrt(np.mean(resid[used] ** 2)))
        if it == nclip or rms == 0:
            break
        new = resid <= sigma * rms
        if new.sum() < _MIN_POINTS[geometry] or np.array_equal(new, used):
            break
        used = new
    return Fit(m, t, rms, used)


# --------------------------------------------------------------------------------------------
# Aligning a group of catalogues


@dataclass(frozen=True)
class Aligned:
    tweak: Tweak | None  # None: not aligned (too few matches)
    nmatch: int
    rms: float


def align_catalogs(cats: list[np.ndarray], ra_tp: float, dec_tp: float,
                   p: TweakregParams) -> tuple[list[Aligned], np.ndarray]:
    """Relative alignment of tangent-plane catalogues ((n, 2) arcsec), tweakwcs-style.

    Returns each catalogue's alignment and the merged, aligned group catalogue (each source
    once: the first exposure's, plus the unmatched sources of each exposure aligned after it).
    """
    n = len(cats)
    out: list[Aligned | None] = [None] * n
    if n == 0:
        return [], np.zeros((0, 2))
    order = list(range(n))
    first = 0 if p.enforce_user_order else max(order, key=lambda k: (len(cats[k]), -k))
    ident = Tweak(ra_tp, dec_tp)
    out[first] = Aligned(ident, len(cats[first]), 0.0)
    refcat = cats[first].copy()
    todo = [k for k in order if k != first]
    guess = (-p.xoffset, -p.yoffset)
    while todo:
        trials = []
        for k in (todo[:1] if p.enforce_user_order else todo):
            i, j = match(cats[k], refcat, searchrad=p.searchrad, separation=p.separation,
                         tolerance=p.tolerance, use2dhist=p.use2dhist, guess=guess)
            trials.append((len(i), -k, k, i, j))
        nm, _, k, i, j = max(trials, key=lambda t: (t[0], t[1]))
        todo.remove(k)
        if nm < max(p.minobj, _MIN_POINTS[p.fitgeometry]):
            out[k] = Aligned(None, nm, float("nan"))
            continue
        f = fit(cats[k][i], refcat[j], p.fitgeometry, p.nclip, p.sigma)
        tw = Tweak(ra_tp, dec_tp, _mat(f.matrix), float(f.shift[0]), float(f.shift[1]))
        out[k] = Aligned(tw, int(f.used.sum()), f.rms)
        moved = np.column_stack(tw.apply_plane(cats[k][:, 0], cats[k][:, 1]))
        new = np.setdiff1d(np.arange(len(moved)), i)  # unmatched sources extend the catalogue
        refcat = np.vstack([refcat, moved[new]])
    return [a for a in out if a is not None], refcat


def align_to_absolute(group: np.ndarray, aligned: list[Aligned], refcat: np.ndarray,
                      p: TweakregParams) -> tuple[list[Aligned], int, float]:
    """Fit the merged, aligned group catalogue to an absolute one; compose into each tweak."""
    if len(group) == 0 or not any(a.tweak is not None for a in aligned):
        return aligned, 0, float("nan")
    i, j = match(group, refcat, searchrad=p.abs_searchrad, separation=p.abs_separation,
                 tolerance=p.abs_tolerance, use2dhist=p.abs_use2dhist)
    if len(i) < max(p.abs_minobj, _MIN_POINTS[p.abs_fitgeometry]):
        return aligned, len(i), float("nan")
    f = fit(group[i], refcat[j], p.abs_fitgeometry, p.abs_nclip, p.abs_sigma)
    a0 = next(a for a in aligned if a.tweak is not None).tweak
    g = Tweak(a0.ra_tp, a0.dec_tp, _mat(f.matrix), float(f.shift[0]), float(f.shift[1]))
    new = [Aligned(a.tweak.then(g), a.nmatch, a.rms) if a.tweak is not None else a
           for a in aligned]
    return new, int(f.used.sum()), f.rms


# --------------------------------------------------------------------------------------------
# The step


def good_mask(dq: np.ndarray, good_bits: str) -> np.ndarray:
    """True where a pixel is usable, for JWST-style good-bit strings such as '~DO_NOT_USE'."""
    from astropy.nddata.bitmask import interpret_bit_flags

    from transforms.dq import PIXEL

    flags = interpret_bit_flags(good_bits, flag_name_map=PIXEL)
    if flags is None:
        return np.ones(dq.shape, bool)
    return (dq.astype(np.int64) & ~int(flags)) == 0


def _untweaked_wcs(model: DataModel):
    from transforms.wcs import wcs_of

    return wcs_of(model.replace(drop=("wcs.tweak",)))


def v2v3_tweak(model: DataModel, sky: Tweak, npts: int = 6) -> dict:
    """The sky-plane correction ``sky`` as ``transforms.wcs`` wants it: in V2/V3 about v2/v3_ref.

    ``transforms.wcs.tweak_model`` applies ``v' = ref + M @ (v - ref) + shift`` between the
    ``v2v3vacorr`` and ``v2v3corr`` frames. M and shift are fitted (least squares, exact to
    <1e-6 arcsec over a detector) so that the corrected WCS maps a grid of pixels to the
    sky-corrected positions.
    """
    w = _untweaked_wcs(model)
    ny, nx = np.shape(model["data"])
    gx, gy = np.meshgrid(np.linspace(0, max(nx - 1, 1), npts), np.linspace(0, max(ny - 1, 1), npts))
    v2, v3 = w.get_transform("detector", "v2v3vacorr")(gx.ravel(), gy.ravel())
    ra, dec = w.get_transform("v2v3vacorr", "world")(v2, v3)
    ra2, dec2 = apply_tweak(ra, dec, sky)
    v2c, v3c = w.get_transform("world", "v2v3vacorr")(ra2, dec2)
    ref = np.array([float(model.get("wcsinfo.v2_ref") or 0.0),
                    float(model.get("wcsinfo.v3_ref") or 0.0)])
    a = np.column_stack([v2 - ref[0], v3 - ref[1], np.ones(v2.size)])
    coef, *_ = np.linalg.lstsq(a, np.column_stack([v2c - ref[0], v3c - ref[1]]), rcond=None)
    m = coef[:2].T
    shift = coef[2]
    rot = math.degrees(math.atan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1]))
    return {"matrix": [[float(m[0, 0]), float(m[0, 1])], [float(m[1, 0]), float(m[1, 1])]],
            "shift": [float(shift[0]), float(shift[1])], "rotation": rot,
            "scale": float(math.sqrt(abs(np.linalg.det(m))))}


def _untweaked_world(model: DataModel, x: np.ndarray, y: np.ndarray):
    ra, dec = _untweaked_wcs(model)(x, y)
    return np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)


def detect_in(model: DataModel, p: TweakregParams) -> Stars:
    """Stars of one exposure, with its bad DQ pixels masked."""
    data = np.asarray(model["data"])
    mask = ~good_mask(np.asarray(model["dq"]), GOOD_BITS) if "dq" in model.arrays else None
    return find_stars(data, mask, snr_threshold=p.snr_threshold, kernel_fwhm=p.kernel_fwhm,
                      bkg_boxsize=p.bkg_boxsize, sigma_radius=p.sigma_radius,
                      minsep_fwhm=p.minsep_fwhm, sharplo=p.sharplo, sharphi=p.sharphi,
                      roundlo=p.roundlo, roundhi=p.roundhi, brightest=p.brightest,
                      peakmax=p.peakmax)


def _check(cals: tuple[DataModel, ...], p: TweakregParams) -> None:
    if p.starfinder != "iraf":
        raise TweakregError(f"tweakreg starfinder {p.starfinder!r} is not implemented; calops "
                            "uses 'iraf' (JWST's default)")
    if p.fitgeometry not in GEOMETRIES or p.abs_fitgeometry not in GEOMETRIES:
        raise TweakregError(f"fitgeometry must be one of {', '.join(GEOMETRIES)}")
    if p.searchrad <= 0 or p.tolerance <= 0:
        raise TweakregError("tweakreg searchrad and tolerance must be positive (arcsec)")
    for m in cals:
        if "data" not in m.arrays or np.ndim(m["data"]) != 2:
            raise TweakregError(f"tweakreg needs 2-D cal images, got {m!r}")


@register("tweakreg", "1.0", "image3", TweakregParams, (), keyword="S_TWKREG")
def tweakreg(cals: tuple[DataModel, ...], refs: dict, params: TweakregParams
             ) -> tuple[DataModel, ...]:
    """Align the exposures of an association; record the correction as wcs.tweak meta."""
    cals = tuple(cals)
    _check(cals, params)
    want_abs = bool(params.abs_refcat) and params.abs_refcat.lower() != "none"
    if len(cals) < 2 and not want_abs:
        return tuple(m.replace(meta={"cal_step.tweakreg": "SKIPPED"}) for m in cals)
    skies = []
    for m in cals:
        s = detect_in(m, params)
        skies.append(_untweaked_world(m, s.x, s.y) if len(s) else (np.zeros(0), np.zeros(0)))
    all_ra = np.concatenate([r for r, _ in skies])
    all_dec = np.concatenate([d for _, d in skies])
    if all_ra.size == 0:
        return tuple(m.replace(meta={"cal_step.tweakreg": "SKIPPED"}) for m in cals)
    ra_tp, dec_tp = sky_center(all_ra, all_dec)
    cats = [np.column_stack(to_plane(r, d, ra_tp, dec_tp)) for r, d in skies]
    if len(cals) >= 2:
        aligned, group = align_catalogs(cats, ra_tp, dec_tp, params)
    else:
        aligned, group = [Aligned(Tweak(ra_tp, dec_tp), len(cats[0]), 0.0)], cats[0]
    abs_info = {}
    if want_abs:
        ref = (refs or {}).get("abs_refcat")
        if ref is None or "ra" not in ref.arrays or "dec" not in ref.arrays:
            raise TweakregError(f"abs_refcat={params.abs_refcat!r} asks for absolute alignment; "
                                "pass the catalogue as refs['abs_refcat'], a catalog DataModel "
                                "with 'ra' and 'dec' columns in degrees")
        refxy = np.column_stack(to_plane(ref["ra"], ref["dec"], ra_tp, dec_tp))
        aligned, nabs, rms_abs = align_to_absolute(group, aligned, refxy, params)
        abs_info = {"abs_nmatch": nabs,
                    "abs_rms_arcsec": rms_abs if math.isfinite(rms_abs) else None}
    if sum(a.tweak is not None for a in aligned) < 2 and not abs_info:
        return tuple(m.replace(meta={"cal_step.tweakreg": "SKIPPED"}) for m in cals)
    out = []
    for m, a, c in zip(cals, aligned, cats):
        if a.tweak is None:
            out.append(m.replace(meta={"cal_step.tweakreg": "SKIPPED"}, drop=("wcs.tweak",)))
            continue
        info = {"nmatch": a.nmatch, "rms_arcsec": a.rms, "fitgeometry": params.fitgeometry,
                "nsources": int(len(c)), **abs_info}
        tw = v2v3_tweak(m, a.tweak)
        tw.update(sky=a.tweak.to_meta(), **info)
        out.append(m.replace(meta={"wcs.tweak": tw,
                                   "cal_step.tweakreg": "COMPLETE"}))
    return tuple(out)
