"""Reports of a build diff: a terse terminal summary, JSON, and an HTML page to sign a build off.

The HTML page is one self-contained file (open it from a CI artifact, a mail, a folder offline):
styles and the small script that sorts and filters the tables are inline, pictures are PNGs
inlined as base64 ``data:`` URIs, nothing is fetched from the network. It holds

- the verdict and the counts; summaries by cause, by reference file, by step (where a root
  cause is recorded) and by instrument, each row a filter on the products below;
- every pair in a sortable, filterable table, and a gallery with thumbnails of every pair over
  tolerance: the science data of B, B − A and B / A under a percentile stretch (0.5–99.5 % of
  the pixels that changed, centred on 0 and 1) and the map of pixels whose DQ flags changed;
- the worst pairs large (A, B, B − A, B / A, DQ, histogram of |Δ| against the tolerance);
- catalog pairs as plots: Δmag against mag, astrometric offsets, offsets on the sky;
- one section per product: full ids with the ``calops lineage`` command to paste, why it is over,
  per-array numbers, the two recipes step by step and (given the catalog) its lineage tree.

Thumbnails are drawn without matplotlib (a colour map lookup and an indexed PNG written with
zlib), so a report of hundreds of pairs takes seconds; the large figures and the catalog plots
use matplotlib (Agg).

Extension point: a module named in ``SECTION_MODULES`` (e.g. ``flows.report_spec``) exposes
``section(ctx: ReportContext) -> Section | list[Section] | None``; its sections are placed
before the per-product details and listed in the navigation bar. Adding a module is one line.
"""

from __future__ import annotations

import base64
import html
import importlib
import io
import json
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalogs.diff import FAILING, STATUSES, BuildDiff, Cause, PairResult, clean_json

STATUS_TITLES = {"identical": "identical", "within": "within tolerance", "accepted": "accepted",
                 "over": "over tolerance", "only_a": "only in A", "only_b": "only in B"}
STATUS_SHORT = {"identical": "identical", "within": "within", "accepted": "accepted",
                "over": "over", "only_a": "only A", "only_b": "only B"}
# Sections contributed by other modules: each has section(ctx) -> Section | list | None.
SECTION_MODULES: tuple[str, ...] = ("flows.report_spec", "flows.report_cube")
STRETCH = (0.5, 99.5)  # percentiles of the stretch


# --- summaries (terminal and HTML) -----------------------------------------------------------

def _pair_name(p: PairResult) -> str:
    return f"{p.subject}/{p.stage}/{p.kind}"


def _where(c: Cause) -> str:
    return f"{c.stage}.{c.step}" if c.step else c.stage


def _count(ps: Sequence[PairResult]) -> Counter:
    return Counter(p.status for p in ps)


def _roots(p: PairResult) -> list[Cause]:
    """A pair's root causes, one per label."""
    seen: dict[str, Cause] = {}
    for c in p.causes:
        seen.setdefault(c.label, c)
    return list(seen.values())


def _order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with failing pairs first, then by how many pairs."""
    return sorted(rows, key=lambda r: (-(r["counts"]["over"] + r["counts"]["only_a"]),
                                       -len(r["pairs"]), r["key"]))


def _add(rows: dict[str, dict[str, Any]], key: str, p: PairResult, **info: Any) -> None:
    r = rows.setdefault(key, {"key": key, "pairs": [], **info})
    if p not in r["pairs"]:
        r["pairs"].append(p)


def _finish(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows.values():
        r["counts"] = _count(r["pairs"])
        r["instruments"] = sorted({p.instrument or "?" for p in r["pairs"]})
    return _order(list(rows.values()))


def by_cause(bd: BuildDiff) -> list[dict[str, Any]]:
    """One row per root cause (a pair with several causes counts under each): ``key`` (the
    label), ``cause``, ``pairs``, ``counts`` (by status), ``instruments``."""
    rows: dict[str, dict[str, Any]] = {}
    for p in bd.pairs:
        for c in _roots(p):
            _add(rows, c.label, p, cause=c)
    return _finish(rows)


def by_reference(bd: BuildDiff) -> list[dict[str, Any]]:
    """One row per changed reference file (reftype, step, file in A, file in B)."""
    rows: dict[str, dict[str, Any]] = {}
    for p in bd.pairs:
        for c in _roots(p):
            if c.what == "reference":
                _add(rows, c.label, p, reftype=c.name, where=_where(c), a=c.a, b=c.b)
    return _finish(rows)


def by_step(bd: BuildDiff) -> list[dict[str, Any]]:
    """One row per step where a root cause is recorded (``stage.step``), with its causes and
    how many pairs first diverge there."""
    rows: dict[str, dict[str, Any]] = {}
    for p in bd.pairs:
        for c in _roots(p):
            _add(rows, _where(c), p)
            rows[_where(c)].setdefault("causes", set()).add(c.label)
    out = _finish(rows)
    first = Counter(p.first_step for p in bd.pairs if p.first_step)
    for r in out:
        r["first"] = first.get(r["key"], 0)
    return out


def by_instrument(bd: BuildDiff) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for p in bd.pairs:
        _add(rows, p.instrument or "?", p)
    return sorted(_finish(rows), key=lambda r: r["key"])


# --- terminal --------------------------------------------------------------------------------

def _table(head: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i])
                         for i, c in enumerate(cells)).rstrip()

    return [line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows]


def _max_abs(p: PairResult) -> str:
    v = p.max_abs
    return "" if v is None else f"{v:.3g}"


def _shell_quote(s: str) -> str:
    return s if s and all(ch.isalnum() or ch in "._-:/=" for ch in s) else "'" + s.replace("'", "'\\''") + "'"


def accept_scope(c: Cause) -> str:
    """A short ``--accept`` scope that names cause ``c``: the new reference file, the
    parameter (``stage.step.name``), else the whole label."""
    if c.what == "reference" and c.b and "[" not in str(c.b):
        return str(c.b)
    if c.what == "parameter":
        return f"{_where(c)}.{c.name}"
    return c.label


def text_summary(bd: BuildDiff, n_worst: int = 5) -> str:
    """Aligned tables: counts, pairs by cause, the worst products, the verdict."""
    c = bd.counts()
    t = bd.config.tolerance
    out = [f"calops diff {bd.build_a} -> {bd.build_b}  ({bd.diff_id}; rtol {t.rtol:g}, "
           f"atol {t.atol:g}{'; where ' + bd.where if bd.where else ''})", ""]
    out += _table(["pairs"] + [STATUS_TITLES[s] for s in STATUSES],
                  [[str(len(bd.pairs))] + [str(c[s]) for s in STATUSES]],
                  right=set(range(len(STATUSES) + 1)))
    groups = bd.groups()
    if groups:
        out += ["", "pairs by cause (a pair is listed once, under all of its root causes):"]
        cols = ["over", "accepted", "within", "only_a", "only_b"]
        rows = []
        for label, ps in groups.items():
            n = _count(ps)
            for i, cause in enumerate(label.split("; ")):
                rows.append(([str(len(ps))] + [str(n[s]) for s in cols] if i == 0
                             else [""] * (len(cols) + 1)) + [cause])
        out += ["  " + ln for ln in _table(
            ["pairs", "over", "accepted", "within", "only in A", "only in B", "cause"], rows,
            right=set(range(len(cols) + 1)))]
    worst = bd.worst(n_worst)
    if worst:
        out += ["", "worst:"]
        rows = [[_pair_name(p), p.status, f"{p.score:.3g}", _max_abs(p), p.what or "-",
                 p.first_step or ""] for p in worst]
        out += ["  " + ln for ln in _table(["product", "status", "frac over", "max |Δ|",
                                            "over tolerance", "first diverging step"], rows,
                                           right={2, 3})]
    n_fail = c["over"] + c["only_a"]
    out += ["", f"result: {'FAIL' if bd.failed else 'PASS'} ({c['over']} over tolerance, "
                f"{c['only_a']} missing in {bd.build_b}, {c['accepted']} accepted)"
            if n_fail or c["accepted"] else "result: PASS (no difference over tolerance)"]
    if c["over"]:
        first = next((r["cause"] for r in by_cause(bd) if r["counts"]["over"]), None)
        if first is not None:
            out.append(f"accept one cause: calops diff {_shell_quote(bd.build_a)} "
                       f"{_shell_quote(bd.build_b)} --accept {_shell_quote(accept_scope(first))}"
                       " --why TEXT")
    return "\n".join(out) + "\n"


def to_json(bd: BuildDiff) -> str:
    """The whole diff as JSON (pairs, per-array statistics, causes, groups, verdict)."""
    return json.dumps(clean_json(bd.to_dict()), indent=1, default=str, allow_nan=False) + "\n"


# --- PNG -------------------------------------------------------------------------------------

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB image (h, w, 3) as PNG bytes (pure numpy + zlib)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def png_indexed(idx: np.ndarray, palette: np.ndarray) -> bytes:
    """An image of palette indices (h, w) uint8 with a (256, 3) RGB palette as PNG bytes: a
    third of the size of RGB, which matters when hundreds of thumbnails are inlined."""
    idx = np.ascontiguousarray(idx, dtype=np.uint8)
    h, w = idx.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), idx], axis=1)
    pal = np.ascontiguousarray(palette, dtype=np.uint8).reshape(-1, 3)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + _png_chunk(b"PLTE", pal.tobytes())
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


_PALETTES: dict[str, np.ndarray] = {}
NAN_RGB = {"gray": (96, 122, 156), "RdBu_r": (150, 150, 150), "PuOr_r": (150, 150, 150)}
# DQ change map: unchanged, gained a flag, lost one, both
DQ_RGB = np.array([(244, 244, 244), (214, 39, 40), (31, 119, 180), (148, 103, 189)], np.uint8)
DQ_LEGEND = (("gained a flag", "#d62728"), ("lost a flag", "#1f77b4"), ("both", "#9467bd"))


def _palette(cmap: str) -> np.ndarray:
    """255 colours of a matplotlib colour map and, at index 255, the colour of NaN."""
    if cmap not in _PALETTES:
        from matplotlib import colormaps

        pal = np.zeros((256, 3), np.uint8)
        pal[:255] = (np.asarray(colormaps[cmap](np.linspace(0, 1, 255)))[:, :3] * 255 + 0.5)
        pal[255] = NAN_RGB.get(cmap, (150, 150, 150))
        _PALETTES[cmap] = pal
    return _PALETTES[cmap]


# --- stretches -------------------------------------------------------------------------------

def percentile_limits(x: np.ndarray, lo: float = STRETCH[0], hi: float = STRETCH[1]) -> tuple[float, float]:
    """The ``lo``-``hi`` percentile range of the finite values (a linear stretch that a few
    outliers do not set)."""
    f = x[np.isfinite(x)]
    if not f.size:
        return 0.0, 1.0
    a, b = np.percentile(f, [lo, hi])
    if not b > a:
        a, b = float(f.min()), float(f.max())
    return float(a), float(b)


def symmetric_limit(x: np.ndarray, center: float = 0.0, pct: float = STRETCH[1]) -> float:
    """Half-width of a stretch centred on ``center`` (0 for B − A, 1 for B / A): the ``pct``
    percentile of |x − center| over the values that moved. Pixels that did not change do not
    count, so a handful of changed pixels among millions still fill the colour range; 0 when
    nothing moved."""
    f = x[np.isfinite(x)]
    dev = np.abs(f.astype(np.float64) - center)
    dev = dev[dev > 0]
    if not dev.size:
        return 0.0
    lim = float(np.percentile(dev, pct))
    return lim if lim > 0 else float(dev.max())


def is_uniform(x: np.ndarray | None) -> bool:
    """Whether a map has one value (or none): it draws as a single colour, and says so."""
    if x is None:
        return True
    f = x[np.isfinite(x)] if x.dtype.kind == "f" else x.ravel()
    if not f.size:
        return True
    lo, hi = float(f.min()), float(f.max())
    return hi - lo <= 1e-6 * max(abs(lo), abs(hi), 1e-30)


def _dilate(x: np.ndarray, how: str) -> np.ndarray:
    """3×3 dilation (largest |value| or bitwise OR), so isolated changed pixels of a thumbnail
    are visible."""
    pad = np.pad(x, 1, constant_values=0 if how == "or" else np.nan)
    shifts = [pad[1 + dy: pad.shape[0] - 1 + dy, 1 + dx: pad.shape[1] - 1 + dx]
              for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    st = np.stack(shifts)
    if how == "or":
        return np.bitwise_or.reduce(st, axis=0)
    k = np.abs(np.where(np.isfinite(st), st, 0)).argmax(axis=0)
    out = np.take_along_axis(st, k[None], axis=0)[0]
    return np.where(np.isfinite(x) & (np.nan_to_num(x) != 0), x, out)


@dataclass
class Thumb:
    """One picture for the page: PNG bytes and what its caption and the test need to know."""

    png: bytes
    kind: str  # data, diff, ratio, dq, hist, catalog
    caption: str
    uniform: bool = False
    cmap: str = ""
    limits: tuple[float, float] = (0.0, 1.0)  # the values at the two ends of the colour map
    size: tuple[int, int] = (0, 0)  # (height, width) of the map drawn, before enlarging


def thumbnail(x: np.ndarray | None, kind: str, min_px: int = 96,
              limits: tuple[float, float] | None = None, title: str = "",
              weight: np.ndarray | None = None) -> Thumb | None:
    """A map drawn as an indexed PNG (origin lower left, as astronomers draw images):
    ``data`` grey under the 0.5–99.5 % percentile stretch (or ``limits``); ``diff``
    blue–white–red centred on 0 and ``ratio`` purple–white–orange centred on 1, each ± the
    99.5th percentile of the values that moved (for a ratio, of the pixels where |``weight``|,
    A's data, is above its median: ratios of faint pixels swing wildly under any additive
    change and would set the stretch); ``dq`` the DQ change codes (DQ_RGB). Sparse
    changes (< 2 % of the pixels) are dilated 3×3 so they stay visible. Maps smaller than
    ``min_px`` are enlarged by an integer factor (nearest)."""
    if x is None:
        return None
    uniform = is_uniform(x)
    lims, cmap = (0.0, 3.0), ""
    if kind == "dq":
        code = np.asarray(x, np.uint8) & 3
        n = int(np.count_nonzero(code))
        frac = n / max(code.size, 1)
        if 0 < frac < 0.02:
            code = _dilate(code, "or")
        idx, pal = code, np.zeros((256, 3), np.uint8)
        pal[:4] = DQ_RGB
        caption = "DQ: no flag changed" if not n else f"DQ changed: {frac:.2%} of the map"
    else:
        x = np.asarray(x, np.float64)
        fin = np.isfinite(x)
        if kind == "data":
            lo, hi = limits or percentile_limits(x)
            cmap, lims = "gray", (lo, hi)
            caption = f"{title or 'B'} [{lo:.3g}, {hi:.3g}]"
            u = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        else:
            center = 1.0 if kind == "ratio" else 0.0
            moved = fin & (x != center)
            frac = np.count_nonzero(moved) / max(x.size, 1)
            if 0 < frac < 0.02:
                x = _dilate(x - center, "maxabs") + center
                fin = np.isfinite(x)
            sel = x
            if weight is not None and weight.shape == x.shape and kind == "ratio":
                w = np.abs(weight)
                bright = np.isfinite(w) & (w >= np.nanmedian(w)) if np.isfinite(w).any() else fin
                if np.count_nonzero(bright & fin & (x != center)):
                    sel = x[bright]
            lim = symmetric_limit(sel, center)
            cmap = "PuOr_r" if kind == "ratio" else "RdBu_r"
            lims = (center - lim, center + lim) if lim else (center - 1, center + 1)
            name = title or ("B / A" if kind == "ratio" else "B − A")
            if uniform and fin.any():
                caption = f"{name} = {float(x[fin][0]):.4g} everywhere"
            else:
                caption = f"{name} {center:g} ± {lim:.2g}" if lim else f"{name}: no change"
            u = 0.5 + (x - center) / (2 * lim) if lim > 0 else np.full_like(x, 0.5)
        idx = np.where(fin, np.clip(np.nan_to_num(u) * 254 + 0.5, 0, 254), 255).astype(np.uint8)
        pal = _palette(cmap)
    h, w = idx.shape
    idx = idx[::-1]
    k = max(1, -(-min_px // max(1, max(idx.shape))))
    if k > 1:
        idx = idx.repeat(k, axis=0).repeat(k, axis=1)
    return Thumb(png_indexed(idx, pal), kind, caption, uniform, cmap, lims, (h, w))


def _gradient(cmap: str) -> str:
    pal = _palette(cmap)
    stops = [f"rgb({r},{g},{b}) {i / 10:.0%}" for i, (r, g, b) in
             enumerate(pal[np.linspace(0, 254, 11).astype(int)])]
    return f"linear-gradient(90deg,{','.join(stops)})"


def _panel(t: Thumb | None, title: str, overlay: str = "") -> str:
    """A large map with its colour bar (or legend) and title, in HTML around the PNG."""
    if t is None:
        return ""
    if t.kind == "dq":
        bar = ("<div class='cbar-l'>" + "".join(f"<span><i style='background:{c}'></i>{_e(n)}</span>"
                                                 for n, c in DQ_LEGEND) + "</div>")
    elif t.kind == "hist":
        bar = ""
    else:
        lo, hi = t.limits
        mid = (lo + hi) / 2
        bar = (f"<div class='cbar' style='background:{_gradient(t.cmap)}'></div>"
               f"<div class='cbar-l'><span>{lo:.4g}</span><span>{mid:.4g}</span>"
               f"<span>{hi:.4g}</span></div>")
    b64 = base64.b64encode(t.png).decode()
    return (f"<figure class='panel'><div class='title'>{_e(title)}</div><div class='imgwrap'>"
            f"<img alt='{_e(title)}: {_e(t.caption)}' data-kind='{t.kind}' "
            f"data-uniform='{1 if t.uniform else 0}' src='data:image/png;base64,{b64}'>{overlay}</div>"
            f"{bar}<figcaption>{_e(t.caption)}</figcaption></figure>")


def _circles(im: Mapping[str, Any], key: str = "changed_at") -> str:
    """An SVG overlay ringing the changed pixels of a sparse change (at most 60)."""
    at = im.get(key)
    if at is None or not 0 < len(at) <= 60:
        return ""
    ny, nx = im["diff"].shape
    f = im.get("factor", 1)
    r = max(1.5, 0.025 * max(nx, ny))
    cs = "".join(f"<circle cx='{(x + 0.5) / f:.2f}' cy='{ny - (y + 0.5) / f:.2f}' r='{r:.2f}'/>"
                 for y, x in at)
    return (f"<svg class='ring' viewBox='0 0 {nx} {ny}' preserveAspectRatio='none'>{cs}</svg>")


def _median_abs(x: np.ndarray) -> float:
    f = np.abs(x[np.isfinite(x)])
    return float(np.median(f)) if f.size else 1.0


def pair_panels(p: PairResult, build_a: str, build_b: str) -> str:
    """The large view of one pair, in HTML: data of A and B (one percentile stretch for both),
    B − A, B / A, the DQ change map (each with its colour bar) and the histogram of
    log10|Δ| against the tolerance. Empty when the pair has no large pictures."""
    im = p.images
    if not im or "error" in im:
        return (f"<p class='muted'>no picture: {_e(im['error'])}</p>" if im else "")
    a, b = im["a"], im["b"]
    lims = percentile_limits(np.concatenate([a[np.isfinite(a)].ravel(), b[np.isfinite(b)].ravel()]))
    plane = f", integration {im['plane'][0]}" if im.get("plane") else ""
    f = im.get("factor", 1)
    note = (f"{im['shape'][1]}×{im['shape'][0]} px{plane}"
            + (f", shown in {f}×{f} blocks (B − A: the largest change of each block; "
               "B / A: the median)" if f > 1 else ""))
    arr = p.diff.arrays.get(im["dq_array"]) if (p.diff and im.get("dq_array")) else None
    flags = ""
    if arr is not None and arr.mode == "dq":
        fl = [f"+{k} {v}" for k, v in arr.dq_gained.items()] + \
             [f"−{k} {v}" for k, v in arr.dq_lost.items()]
        flags = ": " + ", ".join(fl[:4]) + (" …" if len(fl) > 4 else "")
    panels = [
        _panel(thumbnail(a, "data", 300, lims, build_a), f"{build_a}: {im['array']}"),
        _panel(thumbnail(b, "data", 300, lims, build_b), f"{build_b}: {im['array']}"),
        _panel(thumbnail(im["diff"], "diff", 300), f"{build_b} − {build_a}", _circles(im)),
        _panel(thumbnail(im["ratio"], "ratio", 300, weight=a), f"{build_b} / {build_a}"),
        _panel(thumbnail(im["dq"], "dq", 300), f"{im['dq_array']}: {im['dq_changed']} px changed"
               f"{flags}", _circles(im, "dq_at")) if im.get("dq") is not None else "",
        _panel(hist_figure(p, im["array"], _median_abs(b)), f"|Δ| of {im['array']}")]
    return (f"<div class='panels'>{''.join(panels)}</div>"
            f"<p class='muted small'>{_e(note)}. Stretch: {STRETCH[0]:g}–{STRETCH[1]:g} % "
            "percentiles (B − A and B / A: of the pixels that changed, centred on 0 and 1).</p>")


# --- matplotlib figures ----------------------------------------------------------------------

def _figure(w: float, h: float, dpi: int = 90) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    return buf.getvalue()


def _style(ax: Any) -> None:
    ax.tick_params(labelsize=7, length=2)
    for s in ax.spines.values():
        s.set_linewidth(0.6)
        s.set_color("#888")


def hist_figure(p: PairResult, name: str, typical: float = 1.0) -> Thumb | None:
    """Histogram of log10|B − A| of one array (pixels per decade), with the tolerance
    ``atol + rtol·|B|`` at a typical |B| (``typical``, e.g. the median) marked."""
    arr = p.diff.arrays.get(name) if p.diff else None
    if arr is None or not arr.hist_counts or not any(arr.hist_counts):
        return None
    from transforms.compare import hist_edges

    fig = _figure(3.4, 3.0, dpi=90)
    ax = fig.add_axes((0.2, 0.16, 0.76, 0.74))
    e = hist_edges()
    centers = np.concatenate([[e[0] - 0.5], (e[:-1] + e[1:]) / 2, [e[-1] + 0.5]])
    counts = np.asarray(arr.hist_counts)
    ax.bar(centers, counts, width=0.9, color="#4a6fa5")
    nz = np.flatnonzero(counts)
    lo, hi = centers[max(nz[0] - 1, 0)] - 0.6, centers[min(nz[-1] + 1, len(centers) - 1)] + 0.6
    tol = arr.atol + arr.rtol * abs(typical if np.isfinite(typical) else 1.0)
    if tol > 0:
        t = float(np.log10(tol))
        ax.axvline(t, color="#d62728", lw=1, label=f"tolerance at |B| = {abs(typical):.3g}")
        ax.legend(fontsize=7, frameon=False, loc="upper left")
        lo, hi = min(lo, t - 0.6), max(hi, t + 0.6)
    ax.set_xlim(lo, hi)
    ax.set_yscale("symlog")
    ax.set_xlabel(f"log10 |Δ| ({name})", fontsize=8)
    ax.set_ylabel("pixels", fontsize=8)
    ax.set_title(f"{arr.n_over} of {arr.n} over tolerance", fontsize=8)
    _style(ax)
    return Thumb(_png(fig), "hist", f"max |Δ| {arr.max_abs:.3g}, max rel {arr.max_rel:.3g}")


def _mag_axis_label(src: Mapping[str, Any]) -> str:
    return src.get("mag_column") or "mag"


def catalog_figure(p: PairResult, build_a: str, build_b: str) -> Thumb | None:
    """Δmag (B − A) against mag of the matched sources; the astrometric offsets (Δα·cos δ,
    Δδ in mas); and the offsets on the sky (arrows, exaggerated), with the sources found by
    only one build."""
    src = p.sources
    if not src or "error" in src:
        return None
    if not (len(src["ra"]) or len(src["only_a"]["ra"]) or len(src["only_b"]["ra"])):
        return None  # no source in either catalog: nothing to plot
    ma, mb = np.asarray(src["mag_a"], float), np.asarray(src["mag_b"], float)
    dm = mb - ma
    ok = np.isfinite(ma) & np.isfinite(dm)
    fig = _figure(12.6, 4.1)
    ax1 = fig.add_axes((0.05, 0.13, 0.26, 0.72))
    ax2 = fig.add_axes((0.38, 0.13, 0.26, 0.72))
    ax3 = fig.add_axes((0.71, 0.13, 0.27, 0.72))
    ax1.axhline(0, color="#999", lw=0.7)
    if ok.any():
        ax1.scatter(ma[ok], dm[ok], s=10, color="#4a6fa5", label=f"{ok.sum()} matched")
        med = float(np.median(dm[ok]))
        ax1.axhline(med, color="#d62728", lw=0.8, ls="--", label=f"median {med:+.4g}")
        ax1.legend(fontsize=7, frameon=False)
    ax1.invert_xaxis()
    ax1.set_xlabel(f"{_mag_axis_label(src)} ({build_a})", fontsize=8)
    ax1.set_ylabel(f"Δmag ({build_b} − {build_a})", fontsize=8)
    ax1.set_title("photometry", fontsize=9)
    dx, dy = np.asarray(src["dra_mas"], float), np.asarray(src["ddec_mas"], float)
    ax2.axhline(0, color="#bbb", lw=0.6)
    ax2.axvline(0, color="#bbb", lw=0.6)
    if dx.size:
        ax2.scatter(dx, dy, s=10, color="#4a6fa5")
        rms = float(np.sqrt(np.mean(dx ** 2 + dy ** 2)))
        lim = max(float(np.max(np.abs(np.concatenate([dx, dy])))) * 1.2, 1e-3)
        from matplotlib.ticker import MaxNLocator

        for axis in (ax2.xaxis, ax2.yaxis):
            axis.set_major_locator(MaxNLocator(5, symmetric=True))
        ax2.set_xlim(lim, -lim)  # east to the left
        ax2.set_ylim(-lim, lim)
        ax2.set_title(f"astrometric offsets: rms {rms:.3g} mas", fontsize=9)
    else:
        ax2.set_title("astrometric offsets: no matched source", fontsize=9)
    ax2.set_aspect("equal", adjustable="box")
    ax2.set_xlabel("Δα·cos δ (mas)", fontsize=8)
    ax2.set_ylabel("Δδ (mas)", fontsize=8)
    ra, dec = np.asarray(src["ra"], float), np.asarray(src["dec"], float)
    oa, ob = src["only_a"], src["only_b"]
    if ra.size:
        cosd = np.cos(np.radians(dec))
        span = max(float(np.ptp(ra) * np.mean(cosd)), float(np.ptp(dec)), 1e-6)
        amp = float(np.max(np.hypot(dx, dy))) if dx.size else 0.0
        scale = 0.08 * span * 3.6e6 / amp if amp > 0 else 1.0  # the longest arrow: 8 % of the field
        ax3.quiver(ra, dec, dx / cosd / 3.6e6 * scale, dy / 3.6e6 * scale, angles="xy",
                   scale_units="xy", scale=1, color="#4a6fa5", width=0.004)
        ax3.scatter(ra, dec, s=4, color="#4a6fa5")
        ax3.set_title(f"offsets on the sky (arrows ×{scale:.3g})", fontsize=9)
    else:
        ax3.set_title("offsets on the sky", fontsize=9)
    if len(oa["ra"]):
        ax3.scatter(oa["ra"], oa["dec"], marker="x", s=30, color="#d62728",
                    label=f"only in {build_a} ({len(oa['ra'])})")
    if len(ob["ra"]):
        ax3.scatter(ob["ra"], ob["dec"], marker="+", s=40, color="#2a9d2a",
                    label=f"only in {build_b} ({len(ob['ra'])})")
    if len(oa["ra"]) or len(ob["ra"]):
        ax3.legend(fontsize=7, frameon=False)
    ax3.invert_xaxis()
    ax3.set_xlabel("RA (deg)", fontsize=8)
    ax3.set_ylabel("Dec (deg)", fontsize=8)
    ax3.ticklabel_format(useOffset=False)
    for ax in (ax1, ax2, ax3):
        _style(ax)
    fig.text(0.01, 0.95, f"{_pair_name(p)}   {STATUS_TITLES[p.status]}: {src['n_a']} sources in "
             f"{build_a}, {src['n_b']} in {build_b}, matched within {src['radius_arcsec']:g}″",
             fontsize=10)
    return Thumb(_png(fig), "catalog", f"{_pair_name(p)}: Δmag, offsets, sky")


# --- HTML ------------------------------------------------------------------------------------

Section = tuple[str, str, str]  # (anchor id, title in the navigation bar, html)


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _short(pid: str | None) -> str:
    if not pid:
        return ""
    algo, _, h = pid.partition(":")
    return f"{algo}:{h[:12]}…" if h else pid


def _num(v: float | None, fmt: str = ".3g") -> str:
    return "" if v is None else format(v, fmt)


def img_tag(t: Thumb | None, cls: str = "thumb", alt: str = "") -> str:
    """An inline ``<img>`` with its caption; ``data-kind``/``data-uniform`` tell a reader (and
    the rendering test) what it shows."""
    if t is None:
        return ""
    b64 = base64.b64encode(t.png).decode()
    return (f"<figure class='{cls}'><img alt='{_e(alt or t.caption)}' data-kind='{t.kind}' "
            f"data-uniform='{1 if t.uniform else 0}' src='data:image/png;base64,{b64}'>"
            f"<figcaption>{_e(t.caption)}</figcaption></figure>")


@dataclass
class ReportContext:
    """What section renderers get: the diff, the order of pairs, anchors, and optionally the
    catalog (lineage) and the store (to read products)."""

    bd: BuildDiff
    n_worst: int = 5
    catalog: Any = None
    store: Any = None
    order: list[PairResult] = field(default_factory=list)  # worst first
    cause_ids: dict[str, int] = field(default_factory=dict)
    ref_ids: dict[str, int] = field(default_factory=dict)
    step_ids: dict[str, int] = field(default_factory=dict)
    e: Callable[[Any], str] = staticmethod(_e)
    img: Callable[..., str] = staticmethod(img_tag)

    figures: dict[int, Thumb | None] = field(default_factory=dict)

    def catalog_figure(self, p: PairResult) -> Thumb | None:
        """The catalog plots of a pair, drawn once."""
        if id(p) not in self.figures:
            self.figures[id(p)] = catalog_figure(p, self.bd.build_a, self.bd.build_b)
        return self.figures[id(p)]

    def anchor(self, p: PairResult) -> str:
        return f"p{self.bd.pairs.index(p)}"

    def link(self, p: PairResult) -> str:
        return f"<a href='#{self.anchor(p)}'>{_e(_pair_name(p))}</a>"


PASS_PILL = "<span class='pill s-identical'>pass</span>"
FAIL_PILL = "<span class='pill s-over'>fail</span>"


def _status(s: str) -> str:
    return f"<span class='pill s-{s}'>{_e(STATUS_SHORT[s])}</span>"


def _counts_cells(r: dict[str, Any]) -> str:
    n = r["counts"]
    return (f"<td class='n' data-v='{len(r['pairs'])}'>{len(r['pairs'])}</td>"
            + "".join(f"<td class='n{' bad' if s in FAILING and n[s] else ''}' data-v='{n[s]}'>"
                      f"{n[s] or ''}</td>" for s in ("over", "accepted", "within")))


def _cmd(text: str) -> str:
    return (f"<span class='cmd'><code>{_e(text)}</code><button class='copy' type='button' "
            f"data-copy='{_e(text)}' title='copy'>copy</button></span>")


def _sec_causes(ctx: ReportContext) -> Section | None:
    rows = by_cause(ctx.bd)
    if not rows:
        return None
    body = []
    for r in rows:
        c: Cause = r["cause"]
        i = ctx.cause_ids[r["key"]]
        full = (f"calops diff {_shell_quote(ctx.bd.build_a)} {_shell_quote(ctx.bd.build_b)} "
                f"--accept {_shell_quote(accept_scope(c))} --why '…'")
        acc = (f"<span class='cmd'><code title='{_e(full)}'>--accept {_e(_shell_quote(accept_scope(c)))}"
               f"</code><button class='copy' type='button' data-copy='{_e(full)}' "
               "title='copy the whole command'>copy</button></span>" if r["counts"]["over"] else "")
        body.append(
            f"<tr class='pick' data-filter='cause' data-value='{i}'><td class='n' data-v='{i}'>{i}</td>"
            f"<td>{_e(c.what)}</td><td><code>{_e(_where(c))}</code></td>"
            f"<td class='cause'>{_e(c.label)}</td>{_counts_cells(r)}"
            f"<td>{_e(', '.join(r['instruments']))}</td><td>{acc}</td></tr>")
    return ("causes", "Causes", (
        "<h2>Changes by cause</h2><p class='muted'>Every difference recorded between the two recipes of a "
        "pair, followed upstream through its inputs. A pair with several causes counts under "
        "each. Click a row to list its products. <code>--accept</code> accepts only the pairs "
        "all of whose causes it names.</p>"
        "<table class='sortable summary'><thead><tr><th>#</th><th>kind</th><th>step</th>"
        "<th>cause</th><th>pairs</th><th>over</th><th>accepted</th><th>within</th>"
        "<th>instruments</th><th>accept it</th></tr></thead><tbody>" + "".join(body)
        + "</tbody></table>"))


def _sec_refs(ctx: ReportContext) -> Section | None:
    rows = by_reference(ctx.bd)
    if not rows:
        return None
    body = "".join(
        f"<tr class='pick' data-filter='ref' data-value='{ctx.ref_ids[r['key']]}'>"
        f"<td>{_e(r['reftype'])}</td><td><code>{_e(r['where'])}</code></td>"
        f"<td><code>{_e(r['a'])}</code></td><td><code>{_e(r['b'])}</code></td>{_counts_cells(r)}"
        f"<td>{_e(', '.join(r['instruments']))}</td></tr>" for r in rows)
    return ("refs", "Reference files", (
        "<h2>By reference file</h2><table class='sortable summary'><thead><tr><th>reftype</th>"
        "<th>step</th><th>file in A</th><th>file in B</th><th>pairs</th><th>over</th>"
        "<th>accepted</th><th>within</th><th>instruments</th></tr></thead><tbody>" + body
        + "</tbody></table>"))


def _sec_steps(ctx: ReportContext) -> Section | None:
    rows = by_step(ctx.bd)
    if not rows:
        return None
    body = "".join(
        f"<tr class='pick' data-filter='step' data-value='{ctx.step_ids[r['key']]}'>"
        f"<td><code>{_e(r['key'])}</code></td>"
        f"<td class='n' data-v='{len(r['causes'])}'>{len(r['causes'])}</td>{_counts_cells(r)}"
        f"<td class='n' data-v='{r['first']}'>{r['first'] or ''}</td>"
        f"<td>{_e(', '.join(r['instruments']))}</td></tr>" for r in rows)
    return ("steps", "Steps", (
        "<h2>By step</h2><p class='muted'>The step where a root cause is recorded (for a product "
        "of a later stage, the upstream step its change comes from); <i>first diverging</i> counts "
        "the pairs whose own stage first differs there.</p>"
        "<table class='sortable summary'><thead><tr><th>step</th><th>causes</th><th>pairs</th>"
        "<th>over</th><th>accepted</th><th>within</th><th>first diverging</th>"
        "<th>instruments</th></tr></thead><tbody>" + body + "</tbody></table>"))


def _sec_instruments(ctx: ReportContext) -> Section | None:
    rows = by_instrument(ctx.bd)
    body = []
    for r in rows:
        n = r["counts"]
        bad = n["over"] + n["only_a"]
        body.append(
            f"<tr class='pick' data-filter='inst' data-value='{_e(r['key'])}'><td>{_e(r['key'])}</td>"
            f"<td class='n' data-v='{len(r['pairs'])}'>{len(r['pairs'])}</td>"
            + "".join(f"<td class='n{' bad' if s in FAILING and n[s] else ''}' data-v='{n[s]}'>"
                      f"{n[s] or ''}</td>" for s in STATUSES)
            + f"<td>{FAIL_PILL if bad else PASS_PILL}</td></tr>")
    return ("instruments", "Instruments", (
        "<h2>By instrument</h2><table class='sortable summary'><thead><tr><th>instrument</th>"
        "<th>pairs</th>" + "".join(f"<th>{_e(STATUS_SHORT[s])}</th>" for s in STATUSES)
        + "<th>verdict</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"))


def _row_attrs(ctx: ReportContext, p: PairResult) -> str:
    roots = _roots(p)
    causes = "|".join(str(ctx.cause_ids[c.label]) for c in roots)
    refs = "|".join(str(ctx.ref_ids[c.label]) for c in roots if c.label in ctx.ref_ids)
    steps = "|".join(sorted({str(ctx.step_ids[_where(c)]) for c in roots}))
    return (f"data-status='{p.status}' data-inst='{_e(p.instrument or '?')}' "
            f"data-stage='{_e(p.stage)}' data-cause='|{causes}|' data-ref='|{refs}|' "
            f"data-step='|{steps}|'")


def _thumbs(ctx: ReportContext, p: PairResult) -> list[Thumb]:
    if p.sources and "error" not in p.sources:
        t = ctx.catalog_figure(p)
        return [Thumb(t.png, "catalog", t.caption, t.uniform)] if t else []
    im = p.thumbs
    if not im or "error" in im:
        return []
    out = [thumbnail(im["b"], "data"), thumbnail(im["diff"], "diff"),
           thumbnail(im["ratio"], "ratio", weight=im["a"])]
    if im.get("dq") is not None:
        out.append(thumbnail(im["dq"], "dq"))
    return [t for t in out if t]


def _no_picture(p: PairResult) -> str:
    for x in (p.thumbs, p.sources):
        if x and "error" in x:
            return x["error"]
    if p.sources is not None:
        return "no source in either catalog"
    if p.kind == "catalog":
        return "catalogs without sky positions"
    return "no image array to draw (or --thumbnails none)"


def _sec_products(ctx: ReportContext) -> Section:
    bd = ctx.bd
    rank = {id(p): i for i, p in enumerate(ctx.order, 1)}
    rows = []
    for p in ctx.order + [p for p in bd.pairs if p not in ctx.order]:
        r = rank.get(id(p), "")
        causes = " ".join(f"<span class='chip' title='{_e(c.label)}'>{ctx.cause_ids[c.label]}</span>"
                          for c in _roots(p))
        rows.append(
            f"<tr {_row_attrs(ctx, p)}><td class='n' data-v='{r or 1e9}'>{r}</td>"
            f"<td>{ctx.link(p)}</td><td>{_e(p.instrument or '?')}</td><td>{_e(p.stage)}</td>"
            f"<td>{_e(p.kind)}</td><td data-v='{STATUSES.index(p.status)}'>{_status(p.status)}</td>"
            f"<td class='n' data-v='{p.score if p.diff else -1}'>{_num(p.score) if p.diff else ''}</td>"
            f"<td class='n' data-v='{p.max_abs if p.max_abs is not None else -1}'>{_max_abs(p)}</td>"
            f"<td>{_e(p.what)}</td><td><code>{_e(p.first_step or '')}</code></td>"
            f"<td data-v='{min([ctx.cause_ids[c.label] for c in _roots(p)], default=1e9)}'>{causes}</td></tr>")
    cards = []
    for p in ctx.order:
        ts = _thumbs(ctx, p)
        if not ts and p.status not in ("over", "accepted"):
            continue
        wide = any(t.kind == "catalog" for t in ts)
        why_not = ("" if ts else "<p class='muted small'>no picture: "
                   + _e(_no_picture(p)) + "</p>")
        cards.append(
            f"<div class='card{' wide' if wide else ''}' {_row_attrs(ctx, p)}><div class='card-h'>{_status(p.status)} "
            f"{ctx.link(p)} <span class='muted'>{_e(p.instrument or '')}</span></div>"
            f"<div class='thumbs'>{''.join(img_tag(t, 'wide' if wide else 'thumb') for t in ts)}</div>{why_not}"
            f"<div class='muted small'>frac over {_num(p.score)} · max |Δ| {_max_abs(p)}"
            f"{' · ' + _e(p.what) if p.what else ''}</div></div>")
    n_pic = sum(1 for p in bd.pairs if p.status in ("over", "accepted"))
    opts = lambda vals: "".join(f"<option value='{_e(v)}'>{_e(t)}</option>" for v, t in vals)  # noqa: E731
    insts = sorted({p.instrument or "?" for p in bd.pairs})
    stages = sorted({p.stage for p in bd.pairs})
    inv_c = sorted(ctx.cause_ids.items(), key=lambda kv: kv[1])
    inv_r = sorted(ctx.ref_ids.items(), key=lambda kv: kv[1])
    inv_s = sorted(ctx.step_ids.items(), key=lambda kv: kv[1])
    filters = (
        "<div class='filters' id='filters'>"
        "<input type='search' id='f-q' placeholder='filter: product, step, cause, flag…'>"
        "<select id='f-status'><option value='changed'>changed (not identical)</option>"
        "<option value='failing'>failing (over, only in A)</option><option value=''>all pairs</option>"
        + opts((s, STATUS_TITLES[s]) for s in STATUSES) + "</select>"
        "<select id='f-inst'><option value=''>every instrument</option>" + opts((i, i) for i in insts)
        + "</select><select id='f-stage'><option value=''>every stage</option>"
        + opts((s, s) for s in stages) + "</select>"
        "<select id='f-cause'><option value=''>every cause</option>"
        + opts((str(i), f"[{i}] {k}") for k, i in inv_c) + "</select>"
        "<select id='f-ref'><option value=''>every reference file</option>"
        + opts((str(i), k) for k, i in inv_r) + "</select>"
        "<select id='f-step'><option value=''>every step</option>"
        + opts((str(i), k) for k, i in inv_s) + "</select>"
        "<button type='button' id='f-reset'>reset</button> <span id='f-count' class='muted'></span></div>")
    return ("products", "Products", (
        "<h2>Products</h2>" + filters +
        "<table class='sortable' id='products'><thead><tr><th title='worst first'>rank</th>"
        "<th>product</th><th>instrument</th><th>stage</th><th>kind</th><th>status</th>"
        "<th title='largest fraction of elements over tolerance (arrays, columns, sources, "
        "metadata)'>frac over</th><th title='largest |B − A| of any number compared'>max |Δ|</th>"
        "<th>over tolerance in</th><th>first diverging step</th><th>causes</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
        f"<h3 id='gallery'>Gallery <span class='muted small'>every pair over tolerance ({n_pic}), "
        "worst first; the filters above apply</span></h3>"
        "<p class='legend muted small'>Each card: B's data (grey, 0.5–99.5 % stretch), "
        "<b>B − A</b> (blue negative, red positive, ± the 99.5th percentile of the pixels that "
        "changed), <b>B / A</b> (purple below 1, orange above), and the DQ change map ("
        + ", ".join(f"<span style='color:{c}'>■</span> {t}" for t, c in DQ_LEGEND)
        + "). Grey: NaN. Sparse changes are dilated to stay visible. Images are shown with "
        "the origin lower left.</p>"
        "<div class='gallery'>" + ("".join(cards) or "<p>No pair is over tolerance.</p>")
        + "</div>"))


def _array_table(p: PairResult) -> str:
    """Per array (or catalog column): counts and extremes; those over tolerance first, the
    others folded away."""
    if not p.diff:
        return ""
    arrs = list(p.diff.arrays.values()) + (list(p.diff.catalog.columns.values())
                                           if p.diff.catalog else [])

    def row(a: Any) -> str:
        flags = ", ".join([f"+{k} {v}" for k, v in a.dq_gained.items()]
                          + [f"−{k} {v}" for k, v in a.dq_lost.items()]) or a.note
        return (f"<tr class='{'bad' if a.over(0.0) else ''}'><td>{_e(a.name)}</td><td>{_e(a.mode)}</td>"
                f"<td class='n'>{a.n_over}</td><td class='n'>{a.n}</td><td class='n'>{a.frac_over:.3g}</td>"
                f"<td class='n'>{a.max_abs:.3g}</td><td class='n'>{a.max_rel:.3g}</td>"
                f"<td class='n'>{a.nan_only_a + a.nan_only_b or ''}</td><td>{_e(flags)}</td></tr>")

    head = ("<thead><tr><th>array</th><th>mode</th><th>over</th><th>of</th><th>frac</th>"
            "<th>max |Δ|</th><th>max rel</th><th>NaN in one</th><th>flags / note</th></tr></thead>")
    over = "".join(row(a) for a in arrs if a.over(0.0))
    meta = "".join(f"<tr class='bad'><td>{_e(k)}</td><td>metadata</td><td colspan='7'>"
                   f"{_e(json.dumps(x, default=str))} → {_e(json.dumps(y, default=str))}</td></tr>"
                   for k, (x, y) in p.diff.meta_changed.items())
    rest = [a for a in arrs if not a.over(0.0)]
    out = f"<table class='arrays'>{head}<tbody>{over}{meta}</tbody></table>" if over or meta else ""
    if rest:
        out += (f"<details><summary>{len(rest)} array{'s' if len(rest) != 1 else ''} within "
                f"tolerance</summary><table class='arrays'>{head}<tbody>"
                + "".join(row(a) for a in rest) + "</tbody></table></details>")
    return out


def _recipe_note(s: dict[str, Any]) -> str:
    if s["same"]:
        return ""
    if not s["key_a"] or not s["key_b"]:
        return f" <span class='muted'>(run only in {'B' if s['key_b'] else 'A'})</span>"
    if (s["version_a"] == s["version_b"] and s["refs_a"] == s["refs_b"] and not s["params"]):
        return " <span class='muted'>(its input differs)</span>"
    return " <span class='muted'>(differs)</span>"


def _recipe_table(p: PairResult, build_a: str, build_b: str) -> str:
    if not p.steps:
        return ""
    rows = []
    for s in p.steps:
        refs = sorted(set(s["refs_a"]) | set(s["refs_b"]))
        ref_cells = "<br>".join(
            (f"{_e(t)}: <code>{_e(s['refs_a'].get(t))}</code>" if s["refs_a"].get(t) == s["refs_b"].get(t)
             else f"{_e(t)}: <code>{_e(s['refs_a'].get(t) or '–')}</code> → "
                  f"<code class='chg'>{_e(s['refs_b'].get(t) or '–')}</code>") for t in refs)
        ver = (_e(s["version_a"]) if s["version_a"] == s["version_b"]
               else f"{_e(s['version_a'] or '–')} → <b class='chg'>{_e(s['version_b'] or '–')}</b>")
        params = "<br>".join(f"{_e(k)}: {_e(json.dumps(a))} → <b class='chg'>{_e(json.dumps(b))}</b>"
                             for k, (a, b) in s["params"].items())
        key = s["key_b"] or s["key_a"] or ""
        rows.append(f"<tr class='{'' if s['same'] else 'diffrow'}'><td>{_e(s['step'])}</td>"
                    f"<td>{ver}</td><td>{ref_cells}</td><td>{params}</td>"
                    f"<td><code title='{_e(key)}'>{_e(_short(key))}</code>"
                    f"{_recipe_note(s)}</td></tr>")
    return (f"<details open><summary>the stage's recipe in {_e(build_a)} and {_e(build_b)}, step by "
            "step</summary><table class='recipe'><thead><tr><th>step</th><th>version</th>"
            "<th>reference files</th><th>parameters that differ</th><th>recipe key (B)</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></details>")


_LINEAGE_MANY = """
WITH RECURSIVE walk(root, depth, node, parent, role, path) AS (
    SELECT r, 0, r, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), [r]
    FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS r)
    UNION ALL
    SELECT w.root, w.depth + 1, e.parent, w.node, e.role, list_append(w.path, e.parent)
    FROM walk w JOIN lineage_edges e ON e.child = w.node
    WHERE w.depth < 100 AND NOT list_contains(w.path, e.parent)
)
SELECT w.root, w.depth, w.node AS id, w.parent, w.role,
       CASE WHEN r.step IS NOT NULL THEN 'recipe' WHEN p.kind IS NOT NULL THEN 'product'
            ELSE 'unknown' END AS node_type,
       coalesce(p.kind, '') AS kind, coalesce(r.step, '') AS step,
       coalesce(r.step_version, '') AS step_version, array_to_string(w.path, '/') AS path
FROM walk w
LEFT JOIN (SELECT product_id, any_value(kind) AS kind FROM products GROUP BY product_id) p
       ON p.product_id = w.node
LEFT JOIN (SELECT recipe_key, any_value(step) AS step, any_value(step_version) AS step_version
           FROM recipes GROUP BY recipe_key) r ON r.recipe_key = w.node
ORDER BY root, path
"""
MAX_TREE_LINES = 300


def lineage_trees(catalog: Any, ids: Sequence[str]) -> dict[str, str]:
    """The upstream lineage tree (as ``calops lineage`` prints it) of each id, in one query."""
    from catalogs.lineage import format_tree

    ids = sorted({i for i in ids if i})
    if catalog is None or not ids:
        return {}
    rows = catalog.sql(_LINEAGE_MANY, [ids]).to_pylist()
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["root"], []).append(r)
    out = {}
    for root, rs in by.items():
        lines = format_tree(rs).splitlines()
        if len(lines) > MAX_TREE_LINES:
            lines = lines[:MAX_TREE_LINES] + [f"… {len(lines) - MAX_TREE_LINES} more lines: "
                                              "run the command above"]
        out[root] = "\n".join(lines)
    return out


def _sec_worst(ctx: ReportContext) -> Section | None:
    worst = ctx.bd.worst(ctx.n_worst)
    if not worst:
        return None
    parts = [f"<h2>The {len(worst)} worst pairs</h2>"]
    for p in worst:
        if p.sources:
            pic = img_tag(ctx.catalog_figure(p), "large")
        else:
            pic = pair_panels(p, ctx.bd.build_a, ctx.bd.build_b)
        parts.append(f"<div class='worst'><h3>{_status(p.status)} {ctx.link(p)} "
                     f"<span class='muted'>{_e(p.instrument or '')}</span></h3>"
                     f"<p class='muted'>frac over {_num(p.score)} · max |Δ| {_max_abs(p)} · "
                     f"{_e(p.what or 'within tolerance')} · first diverging at "
                     f"<code>{_e(p.first_step or '–')}</code></p>"
                     + (pic or "<p class='muted'>no picture (not an image pair, or not drawn: "
                                "see --images and --thumbnails)</p>") + "</div>")
    return ("worst", "Worst", "".join(parts))


def _sec_catalogs(ctx: ReportContext) -> Section | None:
    cats = [p for p in ctx.order if p.kind == "catalog" and p.diff and p.diff.catalog]
    if not cats:
        return None
    worst = ctx.bd.worst(ctx.n_worst)
    parts = ["<h2>Catalogs</h2>"]
    for p in cats:
        cd = p.diff.catalog
        parts.append(f"<h3>{_status(p.status)} {ctx.link(p)}</h3><p>{cd.n_a} sources in "
                     f"{_e(ctx.bd.build_a)}, {cd.n_b} in {_e(ctx.bd.build_b)}; {cd.n_matched} "
                     f"matched within {cd.radius_arcsec:g}″ (largest separation "
                     f"{cd.max_sep_arcsec * 1000:.3g} mas); {cd.n_only_a} only in A, "
                     f"{cd.n_only_b} only in B.</p>")
        if p.sources and "error" in p.sources:
            parts.append(f"<p class='muted'>no plot: {_e(p.sources['error'])}</p>")
        elif p.sources and p in worst:
            parts.append("<p class='muted'>plots: among <a href='#worst'>the worst pairs</a></p>")
        elif p.sources:
            parts.append(img_tag(ctx.catalog_figure(p), "large"))
    return ("catalogs", "Catalogs", "".join(parts))


def _sec_details(ctx: ReportContext) -> Section:
    bd = ctx.bd
    changed = [p for p in ctx.order]
    trees = lineage_trees(ctx.catalog, [i for p in changed for i in (p.product_a, p.product_b)])
    parts = ["<h2>Products in detail</h2><p class='muted'>Full ids, the commands that show their "
             "lineage and provenance, why each pair differs and the two recipes.</p>"]
    for p in changed:
        ids = []
        for side, pid, build in (("A", p.product_a, bd.build_a), ("B", p.product_b, bd.build_b)):
            if not pid:
                ids.append(f"<div class='idrow'><b>{side}</b> ({_e(build)}): not made</div>")
                continue
            tree = trees.get(pid)
            ids.append(f"<div class='idrow'><b>{side}</b> ({_e(build)}): <code class='full'>{_e(pid)}</code>"
                       f"<div>{_cmd(f'calops lineage {pid}')} {_cmd(f'calops export-prov {pid}')}</div>"
                       + (f"<details><summary>lineage of {side}</summary><pre>{_e(tree)}</pre></details>"
                          if tree else "") + "</div>")
        body = [f"<section class='pair' id='{ctx.anchor(p)}'><h3>{_status(p.status)} "
                f"{_e(_pair_name(p))} <span class='muted'>{_e(p.instrument or '')}</span> "
                f"<a class='top' href='#products'>↑ products</a></h3>", "".join(ids)]
        if p.status != "identical":
            if p.causes:
                body.append("<p><b>causes:</b></p><ul>" + "".join(
                    f"<li>{_e(c.label)}" + (f" <span class='muted'>via {_e(' ← '.join(c.via))}</span>"
                                             if c.via else "") + "</li>" for c in _roots(p)) + "</ul>")
            if p.diff and p.diff.reasons:
                body.append("<p><b>over tolerance:</b></p><ul>" + "".join(
                    f"<li>{_e(r)}</li>" for r in p.diff.reasons) + "</ul>")
            elif p.diff:
                body.append("<p>within tolerance" + (
                    f"; metadata that is not compared differs: {_e(', '.join(p.diff.meta_ignored))}"
                    if p.diff.meta_ignored else "") + "</p>")
            if p.accepted:
                body.append(f"<p class='accepted'>accepted by {_e(p.accepted.get('who'))}"
                            f"{' for ' + _e(' | '.join(p.accepted.get('scope') or [])) if p.accepted.get('scope') else ''}"
                            f": {_e(p.accepted.get('why'))}</p>")
            body.append(_array_table(p))
            body.append(_recipe_table(p, bd.build_a, bd.build_b))
        body.append("</section>")
        parts.append("".join(body))
    ident = [p for p in bd.pairs if p.status == "identical"]
    if ident:
        rows = "".join(
            f"<tr id='{ctx.anchor(p)}'><td>{_e(_pair_name(p))}</td><td>{_e(p.instrument or '')}</td>"
            f"<td><code class='full'>{_e(p.product_b)}</code></td>"
            f"<td>{_cmd(f'calops lineage {p.product_b}')}</td></tr>" for p in ident)
        parts.append(f"<h3>Identical products ({len(ident)})</h3><p class='muted'>Same content id "
                     "in both builds: nothing was read.</p><table><thead><tr><th>product</th>"
                     "<th>instrument</th><th>product id</th><th>lineage</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    return ("details", "Details", "".join(parts))


SECTIONS: list[Callable[[ReportContext], Section | None]] = [
    _sec_causes, _sec_refs, _sec_steps, _sec_instruments, _sec_products, _sec_worst,
    _sec_catalogs]


def _extra_sections(ctx: ReportContext) -> list[Section]:
    out: list[Section] = []
    for name in SECTION_MODULES:
        try:
            got = importlib.import_module(name).section(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the report
            sid = name.rsplit(".", 1)[-1]
            got = (sid, sid, f"<h2>{_e(name)}</h2><p class='muted'>this section could not be "
                             f"drawn: {_e(type(exc).__name__)}: {_e(exc)}</p>")
        if got:
            out.extend(got if isinstance(got, list) else [got])
    return out


_CSS = """
:root{--bad:#c0392b;--ok:#2e7d32;--acc:#2a5d9f;--warn:#8a6d00;--line:#e3e6ea;--bg:#f7f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232b;background:#fff}
main{max-width:1500px;margin:0 auto;padding:0 1.5em 3em}
header.top{background:linear-gradient(90deg,#17324d,#2a5d8f);color:#fff;padding:1.1em 1.5em .9em}
header.top h1{margin:0;font-size:1.45em;font-weight:600} header.top code{background:rgba(255,255,255,.15);color:#fff}
header.top .meta{opacity:.85;font-size:.9em;margin-top:.3em}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:.45em 1.5em;
font-size:.92em;display:flex;gap:1.1em;flex-wrap:wrap} nav a{color:#2a5d8f;text-decoration:none} nav a:hover{text-decoration:underline}
h2{font-size:1.2em;margin:1.8em 0 .5em;padding-bottom:.2em;border-bottom:2px solid var(--line)}
h3{font-size:1.02em;margin:1.2em 0 .4em}
.verdict{display:flex;gap:1.2em;align-items:center;margin:1.2em 0 .4em;flex-wrap:wrap}
.badge{display:inline-block;padding:.25em 1em;border-radius:1em;color:#fff;font-weight:700;letter-spacing:.05em}
.PASS{background:var(--ok)}.FAIL{background:var(--bad)}
.tiles{display:flex;gap:.6em;flex-wrap:wrap;margin:.6em 0}
.tile{border:1px solid var(--line);border-radius:8px;padding:.45em .9em;min-width:7.5em;background:var(--bg);cursor:pointer}
.tile b{display:block;font-size:1.5em;font-variant-numeric:tabular-nums}.tile span{font-size:.85em;color:#555}
.tile.bad b{color:var(--bad)}
table{border-collapse:collapse;margin:.4em 0;font-size:.93em}
td,th{padding:.28em .6em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap;position:relative}
table.sortable th{cursor:pointer;user-select:none} table.sortable th:hover{background:#eceff3}
th.asc::after{content:" ▲";font-size:.75em} th.desc::after{content:" ▼";font-size:.75em}
td.n{text-align:right;font-variant-numeric:tabular-nums} td.bad,tr.bad td:first-child{color:var(--bad);font-weight:600}
tbody tr:nth-child(even){background:#fbfbfc} tr.pick{cursor:pointer} tr.pick:hover{background:#eef4fb}
td.cause{max-width:46em}
.pill{display:inline-block;padding:0 .55em;border-radius:.8em;font-size:.85em;font-weight:600;border:1px solid}
.s-over,.s-only_a{color:var(--bad);border-color:#e8b4ae;background:#fdf0ee}
.s-within{color:var(--warn);border-color:#e6d9a2;background:#fdf9ea}
.s-accepted{color:var(--acc);border-color:#b4c8e6;background:#eef3fb}
.s-identical{color:var(--ok);border-color:#b9dcbb;background:#eff8ef}.s-only_b{color:#666;border-color:#ccc}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f2f3f5;padding:0 .25em;border-radius:3px}
code.full{word-break:break-all} code.chg,b.chg{color:var(--bad)}
.muted{color:#6b7480}.small{font-size:.85em}
.filters{display:flex;gap:.5em;flex-wrap:wrap;align-items:center;background:var(--bg);padding:.6em;border:1px solid var(--line);border-radius:8px}
.filters input,.filters select{font:inherit;padding:.2em .4em;max-width:22em}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:.8em}
.card{border:1px solid var(--line);border-radius:8px;padding:.5em .6em;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.card-h{margin-bottom:.3em;font-size:.92em;word-break:break-all}
.thumbs{display:flex;gap:.35em;flex-wrap:wrap}
figure{margin:0} figure.thumb img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ddd;display:block;object-fit:contain;background:#fafafa}
figure.thumb figcaption{font-size:.72em;color:#555;max-width:128px;line-height:1.25;margin-top:.15em}
figure.large img{max-width:100%;border:1px solid #ddd}
.card.wide{grid-column:span 2} figure.wide img{width:100%;border:1px solid #ddd} figure.wide figcaption{display:none} figure.large figcaption{display:none}
.worst{margin-bottom:1.6em}
.panels{display:grid;grid-template-columns:repeat(auto-fill,300px);gap:.9em 1.4em;max-width:1000px}
figure.panel{width:300px} figure.panel .title{font-size:.85em;font-weight:600;margin-bottom:.15em;word-break:break-all}
figure.panel .imgwrap{position:relative;width:300px;height:300px;border:1px solid #ccc;background:#fafafa}
figure.panel img{width:100%;height:100%;object-fit:contain;image-rendering:pixelated;display:block}
figure.panel img[data-kind=hist]{image-rendering:auto}
svg.ring{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none}
svg.ring circle{fill:none;stroke:#111;stroke-width:.6;vector-effect:non-scaling-stroke}
.cbar{height:9px;border:1px solid #bbb;margin-top:4px}
.cbar-l{display:flex;justify-content:space-between;font-size:.72em;color:#444;font-variant-numeric:tabular-nums}
.cbar-l i{display:inline-block;width:.8em;height:.8em;margin-right:.25em;vertical-align:-1px}
figure.panel figcaption{font-size:.75em;color:#555}
section.pair{border-top:1px solid var(--line);padding-top:.3em;margin-top:1em}
section.pair:target,tr:target{background:#fffbe6}
.idrow{margin:.25em 0} .cmd{display:inline-flex;gap:.3em;align-items:center;margin:.15em .5em .15em 0}
.cmd code{word-break:break-all}
button.copy{font-size:.75em;padding:0 .5em;border:1px solid #bbb;border-radius:4px;background:#fff;cursor:pointer}
pre{background:#f6f7f9;border:1px solid var(--line);padding:.6em;overflow:auto;max-height:28em;font-size:12px}
table.recipe tr.diffrow td{background:#fff6f4} a.top{font-size:.8em;font-weight:400;margin-left:.6em}
p.accepted{color:var(--acc)}
.chip{display:inline-block;min-width:1.6em;text-align:center;border-radius:.7em;background:#e8eef6;color:#2a5d8f;font-size:.8em;font-weight:600;margin:0 .1em;cursor:help} .legend span{font-size:1.1em}
"""

_JS = r"""
(function () {
  function val(cell) {
    var v = cell.getAttribute('data-v');
    return v === null ? cell.textContent.trim().toLowerCase() : parseFloat(v);
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var ths = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener('click', function () {
        var dir = th.classList.contains('asc') ? -1 : 1;
        Array.prototype.forEach.call(ths, function (h) { h.classList.remove('asc', 'desc'); });
        th.classList.add(dir === 1 ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = val(a.cells[col]), y = val(b.cells[col]);
          if (typeof x === 'number' && typeof y === 'number') return (x - y) * dir;
          return String(x).localeCompare(String(y), undefined, {numeric: true}) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var F = {q: 'f-q', status: 'f-status', inst: 'f-inst', stage: 'f-stage', cause: 'f-cause',
           ref: 'f-ref', step: 'f-step'};
  function get(k) { var el = document.getElementById(F[k]); return el ? el.value : ''; }
  function keep(el) {
    var st = el.getAttribute('data-status'), s = get('status');
    if (s === 'changed' && st === 'identical') return false;
    if (s === 'failing' && st !== 'over' && st !== 'only_a') return false;
    if (s && s !== 'changed' && s !== 'failing' && st !== s) return false;
    if (get('inst') && el.getAttribute('data-inst') !== get('inst')) return false;
    if (get('stage') && el.getAttribute('data-stage') !== get('stage')) return false;
    var keys = ['cause', 'ref', 'step'];
    for (var i = 0; i < keys.length; i++) {
      var v = get(keys[i]);
      if (v && (el.getAttribute('data-' + keys[i]) || '').indexOf('|' + v + '|') < 0) return false;
    }
    var q = get('q').toLowerCase();
    return !q || el.textContent.toLowerCase().indexOf(q) >= 0;
  }
  function apply() {
    var rows = document.querySelectorAll('#products tbody tr'), n = 0;
    rows.forEach(function (r) { var k = keep(r); r.style.display = k ? '' : 'none'; n += k; });
    document.querySelectorAll('.gallery .card').forEach(function (c) {
      c.style.display = keep(c) ? '' : 'none'; });
    var c = document.getElementById('f-count');
    if (c) c.textContent = n + ' of ' + rows.length + ' pairs shown';
  }
  Object.keys(F).forEach(function (k) {
    var el = document.getElementById(F[k]);
    if (el) el.addEventListener(k === 'q' ? 'input' : 'change', apply);
  });
  function setFilter(kind, value) {
    Object.keys(F).forEach(function (k) { var el = document.getElementById(F[k]);
      if (el) el.value = k === 'status' ? '' : ''; });
    if (kind === 'status') document.getElementById('f-status').value = value;
    else document.getElementById(F[kind]).value = value;
    apply();
    document.getElementById('products').scrollIntoView({behavior: 'smooth'});
  }
  document.querySelectorAll('[data-filter]').forEach(function (el) {
    el.addEventListener('click', function (ev) {
      if (ev.target.closest('button,a')) return;
      setFilter(el.getAttribute('data-filter'), el.getAttribute('data-value'));
    });
  });
  var reset = document.getElementById('f-reset');
  if (reset) reset.addEventListener('click', function () {
    Object.keys(F).forEach(function (k) { var el = document.getElementById(F[k]);
      if (el) el.value = k === 'status' ? 'changed' : ''; });
    apply();
  });
  document.querySelectorAll('button.copy').forEach(function (b) {
    b.addEventListener('click', function () {
      var t = b.getAttribute('data-copy');
      var done = function () { b.textContent = 'copied'; setTimeout(function () { b.textContent = 'copy'; }, 1200); };
      if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(t).then(done); return; }
      var ta = document.createElement('textarea'); ta.value = t; document.body.appendChild(ta);
      ta.select(); try { document.execCommand('copy'); done(); } catch (e) {} ta.remove();
    });
  });
  apply();
})();
"""


def _ids(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {r["key"]: i for i, r in enumerate(rows, 1)}


def html_report(bd: BuildDiff, n_worst: int = 5, catalog: Any = None, store: Any = None) -> str:
    """The report as one self-contained HTML document. ``catalog`` adds each changed
    product's lineage tree; ``store`` is passed on to extra sections."""
    order = [p for p in bd.worst(len(bd.pairs))]
    order += [p for p in bd.pairs if p not in order and p.status != "identical"]
    ctx = ReportContext(bd, n_worst, catalog, store, order, _ids(by_cause(bd)),
                        _ids(by_reference(bd)), _ids(by_step(bd)))
    sections = [s for s in (fn(ctx) for fn in SECTIONS) if s]
    sections += _extra_sections(ctx)
    sections.append(_sec_details(ctx))
    c = bd.counts()
    t = bd.config.tolerance
    verdict = "FAIL" if bd.failed else "PASS"
    insts = {p.instrument for p in bd.pairs if p.status in FAILING}
    causes = {c_.label for p in bd.pairs if p.status == "over" for c_ in p.causes}
    if bd.failed:
        says = (f"{c['over']} pair{'s' if c['over'] != 1 else ''} over tolerance"
                f"{f' ({len(causes)} cause' + ('s' if len(causes) != 1 else '') + ')' if causes else ''}"
                f", {c['only_a']} missing in {_e(bd.build_b)}, in "
                f"{len(insts)} instrument{'s' if len(insts) != 1 else ''}; {c['accepted']} accepted. "
                "The gate fails until they are fixed or accepted.")
    else:
        says = (f"Nothing over tolerance ({c['within']} within, {c['accepted']} accepted, "
                f"{c['identical']} identical). The gate passes.")
    tiles = "".join(
        f"<div class='tile{' bad' if s in FAILING and c[s] else ''}' data-filter='status' "
        f"data-value='{s}'><b>{c[s]}</b><span>{_e(STATUS_TITLES[s])}</span></div>" for s in STATUSES)
    per = (" · per array: " + _e(", ".join(f"{k} rtol {v.rtol:g} atol {v.atol:g}"
                                           for k, v in bd.config.per_array.items()))
           if bd.config.per_array else "")
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>calops diff {_e(bd.build_a)} → {_e(bd.build_b)}: {verdict}</title>"
            f"<style>{_CSS}</style></head><body>"
            f"<header class='top'><h1>calops diff <code>{_e(bd.build_a)}</code> → "
            f"<code>{_e(bd.build_b)}</code></h1><div class='meta'>{_e(bd.diff_id)} · "
            f"{_e(bd.at.strftime('%Y-%m-%d %H:%M:%S UTC'))} · rtol {t.rtol:g}, atol {t.atol:g} "
            f"(|B−A| ≤ atol + rtol·|B|){per} · NaN in both: "
            f"{'equal' if bd.config.nan_equal else 'a difference'}"
            f"{' · where <code>' + _e(bd.where) + '</code>' if bd.where else ''}</div></header>"
            "<nav><a href='#summary'>Summary</a>"
            + "".join(f"<a href='#{sid}'>{_e(title)}</a>" for sid, title, _ in sections)
            + "</nav><main>")
    summary = (f"<section id='summary'><div class='verdict'><span class='badge {verdict}'>"
               f"{verdict}</span><span>{says}</span></div>"
               f"<div class='tiles'><div class='tile' data-filter='status' data-value=''>"
               f"<b>{len(bd.pairs)}</b><span>pairs</span></div>{tiles}</div></section>")
    body = "".join(f"<section id='{sid}'>{h}</section>" for sid, _, h in sections)
    sql = f"calops sql \"SELECT * FROM diffs WHERE diff_id = '{bd.diff_id}'\""
    foot = ("<p class='muted small'>Written by <code>calops diff</code>. The same results are rows "
            f"of the catalog's <code>diffs</code> table with diff_id <code>{_e(bd.diff_id)}</code>: "
            f"{_cmd(sql)}</p>")
    return head + summary + body + foot + f"</main><script>{_JS}</script></body></html>\n"
