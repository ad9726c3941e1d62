"""The cubes section of a diff report: per IFU cube product (s3d) that changed, a table of its
cubes (planes that moved, median ratio B / A, largest |B - A|, the worst plane and spaxel) and,
for each cube that moved,

- the collapsed images (mean over wavelength) of A and B and of B - A, drawn like the
  report's maps (flows.report.thumbnail: no matplotlib needed), the worst spaxel marked;
- the per-plane statistics against wavelength: median B / A and largest |B - A| per plane;
- the spectrum at the worst spaxel, A over B, and their ratio (flows.report_spec's figure).

The numbers come from ``transforms.compare_cube`` (through ``catalogs.diff``'s
``DEEP_COMPARISONS``); this module only draws them.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

from flows import report_spec

MAX_FIGURES = 8  # cubes drawn per report (the table lists every one)


def _e(x: Any) -> str:
    return report_spec._e(x)


def _f(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _ranges(r: Any) -> str:
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in r) or "—"


def _planes_png(c: Any, build_a: str, build_b: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w = np.asarray(c.planes["wavelength"], float)
    fig = Figure(figsize=(11, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(w, np.asarray(c.planes["ratio"], float), lw=0.9, color="#333")
    ax1.axhline(1.0, color="#999", lw=0.6)
    ax1.set_ylabel(f"median {build_b} / {build_a}", fontsize=8)
    ax2.plot(w, np.asarray(c.planes["max_abs"], float), lw=0.9, color="#c0392b")
    ax2.set_ylabel("max |B − A|", fontsize=8)
    for lo, hi in c.moved_planes:
        for ax in (ax1, ax2):
            ax.axvspan(w[lo], w[hi], color="#f5c6a5", alpha=0.5, lw=0)
    for ax in (ax1, ax2):
        ax.set_xlabel("wavelength (µm)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{c.name}: per wavelength plane (shaded: planes over tolerance)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _planes_figure(c: Any, build_a: str, build_b: str) -> str:
    try:
        png = _planes_png(c, build_a, build_b)
    except ImportError:  # the same two curves as an inline SVG
        w = np.asarray(c.planes["wavelength"], float)
        return report_spec._svg({"wavelength": w, "a": np.asarray(c.planes["max_abs"], float),
                                 "b": np.asarray(c.planes["max_abs"], float)})
    return (f"<img alt='per-plane statistics of {_e(c.name)}' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")


def _collapsed(c: Any, build_a: str, build_b: str) -> str:
    from flows import report as R

    pl = c.plot
    y, x = c.worst_spaxel  # ringed in each picture
    f = int(pl.get("factor", 1))
    a, b, d = pl["collapsed_a"], pl["collapsed_b"], pl["collapsed_diff"]
    both = np.concatenate([np.ravel(a), np.ravel(b)])
    lims = R.percentile_limits(both[np.isfinite(both)])
    panels = [(R.thumbnail(a, "data", 300, lims, build_a), f"{build_a}: mean over λ"),
              (R.thumbnail(b, "data", 300, lims, build_b), f"{build_b}: mean over λ"),
              (R.thumbnail(d, "diff", 300), f"{build_b} − {build_a}: mean over λ")]
    ring = R._circles({"diff": d, "factor": f, "at": [(y, x)] if y >= 0 else None}, "at")
    out = [R._panel(t, title, ring) for t, title in panels]
    return f"<div class='panels cube-collapsed'>{''.join(out)}</div>"


def section(ctx: Any, max_figures: int = MAX_FIGURES) -> tuple[str, str, str] | None:
    """The report's cubes section (flows/report.py ``SECTION_MODULES``), or None when no cube
    was compared."""
    body = cubes_html(ctx.bd, max_figures)
    return ("cubes", "Cubes", body) if body else None


def cubes_html(bd: Any, max_figures: int = MAX_FIGURES) -> str:
    """The HTML of the cubes section ('' when no cube product changed)."""
    pairs = [p for p in bd.pairs if getattr(p, "cubes", None) is not None]
    if not pairs:
        return ""
    parts = ["<h2>Cubes</h2><p class='muted'>IFU cubes paired by name; per wavelength plane the "
             "median B / A (spaxels finite and non-zero in both) and the largest |B − A|; the "
             "worst spaxel is the one whose spectrum changed most (sum over λ of |B − A|).</p>"]
    drawn = 0
    for p in pairs:
        cd = p.cubes
        parts.append(f"<h3>{_e(p.subject)}/{_e(p.stage)}/{_e(p.kind)} "
                     f"<span class='s-{_e(p.status)}'>{_e(p.status)}</span></h3>")
        if cd.only_a or cd.only_b:
            parts.append(f"<p>only in {_e(bd.build_a)}: {_e(', '.join(cd.only_a) or '—')}; "
                         f"only in {_e(bd.build_b)}: {_e(', '.join(cd.only_b) or '—')}</p>")
        rows = "".join(
            f"<tr><td>{_e(c.name)}</td><td>{'moved' if c.moved else 'same'}"
            f"{' (' + _e(c.note) + ')' if c.note else ''}</td>"
            f"<td class='n'>{c.n_planes_moved} / {c.n_planes}</td><td>{_e(_ranges(c.moved_planes))}</td>"
            f"<td class='n'>{_f(c.ratio_median)}</td>"
            f"<td class='n'>{_f(c.ratio_lo)} – {_f(c.ratio_hi)}</td>"
            f"<td class='n'>{_f(c.max_abs)}</td>"
            f"<td class='n'>{c.worst_plane} ({_f(c.worst_wavelength)} µm)</td>"
            f"<td class='n'>({c.worst_spaxel[0]}, {c.worst_spaxel[1]})</td>"
            f"<td class='n'>{_f(c.spaxel_ratio_median)}</td>"
            f"<td class='n'>{_f(c.err_ratio_median)}</td>"
            f"<td class='n'>{c.nan_only_a + c.nan_only_b}</td>"
            f"<td class='n'>+{c.dnu_gained} / −{c.dnu_lost}</td></tr>" for c in cd.pairs)
        parts.append("<table><tr><th>cube</th><th></th><th>planes moved</th><th>which</th>"
                     "<th>median B/A</th><th>plane medians</th><th>max |B−A|</th>"
                     "<th>worst plane</th><th>worst spaxel (y, x)</th><th>its B/A</th>"
                     f"<th>error B/A</th><th>NaN in one</th><th>DO_NOT_USE</th></tr>{rows}</table>")
        for c in cd.moved:
            if drawn >= max_figures or not c.plot:
                continue
            y, x = c.worst_spaxel
            parts.append(f"<div class='cube' data-cube='{_e(c.name)}'>")
            parts.append(_collapsed(c, bd.build_a, bd.build_b))
            parts.append(_planes_figure(c, bd.build_a, bd.build_b))
            parts.append(report_spec._figure(
                f"{p.subject} {c.name} spaxel (y={y}, x={x})", dict(c.plot["spaxel"]),
                bd.build_a, bd.build_b, "MJy/sr"))
            parts.append("</div>")
            drawn += 1
    if drawn >= max_figures:
        parts.append(f"<p class='muted'>first {max_figures} moved cubes drawn.</p>")
    return "".join(parts)
