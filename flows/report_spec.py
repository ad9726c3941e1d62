"""The spectra section of a diff report: per 1-D spectral product that changed, a table of its
spectra (wavelength shift, flux ratio B/A) and, for each spectrum that moved, an overlay of
the two spectra and their ratio.

Pictures are PNGs drawn with matplotlib (Agg) embedded as ``data:`` URIs, like the rest of the
report; without matplotlib an inline SVG (pure Python) draws the same two panels.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import numpy as np

MAX_FIGURES = 12  # spectra drawn per report (the table lists every one)


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _f(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _mpl_png(name: str, plot: dict, build_a: str, build_b: str, unit: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w, a, b = (np.asarray(plot[k], float) for k in ("wavelength", "a", "b"))
    fig = Figure(figsize=(11, 4.2), dpi=80)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax1.plot(w, a, lw=0.9, color="#1f5fa8", label=build_a)
    ax1.plot(w, b, lw=0.9, color="#c0392b", alpha=0.8, label=build_b)
    ax1.set_ylabel(unit, fontsize=8)
    ax1.legend(fontsize=8)
    ax1.set_title(name, fontsize=9)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(a != 0, b / a, np.nan)
    ax2.plot(w, r, lw=0.8, color="#333")
    ax2.axhline(1.0, color="#999", lw=0.6)
    ax2.set_ylabel(f"{build_b} / {build_a}", fontsize=8)
    ax2.set_xlabel("wavelength (µm)", fontsize=8)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _svg(plot: dict, width: int = 760, height: int = 260) -> str:
    """Overlay (top) and ratio (bottom) as an inline SVG, no dependencies."""
    w, a, b = (np.asarray(plot[k], float) for k in ("wavelength", "a", "b"))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(a != 0, b / a, np.nan)
    ok = np.isfinite(w)
    if ok.sum() < 2:
        return ""
    x0, x1 = float(np.nanmin(w[ok])), float(np.nanmax(w[ok]))

    def path(x, y, top, h):
        g = np.isfinite(x) & np.isfinite(y)
        if g.sum() < 2:
            return ""
        lo, hi = float(np.nanmin(y[g])), float(np.nanmax(y[g]))
        hi = hi if hi > lo else lo + 1.0
        xs = (x[g] - x0) / (x1 - x0 or 1.0) * (width - 20) + 10
        ys = top + h - (y[g] - lo) / (hi - lo) * h
        return " ".join(f"{u:.1f},{v:.1f}" for u, v in zip(xs, ys))

    h1, h2 = height * 0.62, height * 0.3
    lines = [(path(w, a, 5, h1), "#1f5fa8"), (path(w, b, 5, h1), "#c0392b"),
             (path(w, r, h1 + 15, h2), "#333")]
    body = "".join(f"<polyline fill='none' stroke='{c}' stroke-width='1' points='{p}'/>"
                   for p, c in lines if p)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"style='border:1px solid #ddd'>{body}</svg>")


def _figure(name: str, plot: dict, build_a: str, build_b: str, unit: str) -> str:
    try:
        png = _mpl_png(name, plot, build_a, build_b, unit)
    except ImportError:
        return _svg(plot)
    return (f"<img alt='spectra of {_e(name)}' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")


def section(ctx: Any, max_figures: int = MAX_FIGURES) -> tuple[str, str, str] | None:
    """The report's spectra section (flows/report.py ``SECTION_MODULES``), or None when no
    1-D spectral product was compared."""
    body = spectra_html(ctx.bd, max_figures)
    return ("spectra", "Spectra", body) if body else None


def spectra_html(bd: Any, max_figures: int = MAX_FIGURES) -> str:
    """The HTML of the spectra section ('' when no 1-D spectral product changed)."""
    pairs = [p for p in bd.pairs if getattr(p, "spectra", None) is not None]
    if not pairs:
        return ""
    parts = ["<h2>Spectra</h2><p class='muted'>1-D spectra paired by name; the wavelength "
             "shift is in pixels of A's grid; the ratio is B / A where both are finite.</p>"]
    drawn = 0
    for p in pairs:
        sd = p.spectra
        parts.append(f"<h3>{_e(p.subject)}/{_e(p.stage)}/{_e(p.kind)} "
                     f"<span class='s-{_e(p.status)}'>{_e(p.status)}</span></h3>")
        if sd.only_a or sd.only_b:
            parts.append(f"<p>only in {_e(bd.build_a)}: {_e(', '.join(sd.only_a) or '—')}; "
                         f"only in {_e(bd.build_b)}: {_e(', '.join(sd.only_b) or '—')}</p>")
        rows = "".join(
            f"<tr><td>{_e(s.name)}</td><td>{'moved' if s.moved else 'same'}</td>"
            f"<td class='n'>{_f(s.wl_shift_pix)}</td><td class='n'>{_f(s.ratio_median)}</td>"
            f"<td class='n'>{_f(s.ratio_max_dev)}</td><td class='n'>{_f(s.err_ratio_median)}</td>"
            f"<td class='n'>{s.n_over}</td><td class='n'>{s.n_compared}</td>"
            f"<td class='n'>{s.nan_only_a + s.nan_only_b}</td>"
            f"<td class='n'>+{s.dnu_gained} / −{s.dnu_lost}</td></tr>" for s in sd.pairs)
        parts.append("<table><tr><th>spectrum</th><th></th><th>Δλ (pix)</th>"
                     "<th>median B/A</th><th>max |B/A−1|</th><th>error B/A</th><th>over</th>"
                     f"<th>of</th><th>NaN in one</th><th>DO_NOT_USE</th></tr>{rows}</table>")
        for s in sd.moved:
            if drawn >= max_figures or not s.plot:
                continue
            unit = "Jy" if s.flux_col == "flux" else "MJy/sr"
            parts.append(_figure(f"{p.subject} {p.kind} {s.name}", dict(s.plot), bd.build_a,
                                 bd.build_b, unit))
            drawn += 1
    if drawn >= max_figures:
        parts.append(f"<p class='muted'>first {max_figures} moved spectra drawn.</p>")
    return "".join(parts)
