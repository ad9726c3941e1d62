"""Reports of a build diff: a terse terminal summary, JSON, and a self-contained HTML page.

The HTML page has no external resources: styles are inline and the difference images of the
worst products are PNGs embedded as base64 ``data:`` URIs, so the file can be attached to a CI
run or mailed and still open anywhere. PNGs are drawn with matplotlib (Agg, no display) when it
is installed; otherwise a small pure-numpy PNG writer draws the difference panel alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
import struct
import zlib
from typing import Any

import numpy as np

from catalogs.diff import STATUSES, BuildDiff, PairResult, clean_json
from flows import report_spec

STATUS_TITLES = {"identical": "identical", "within": "within tolerance", "accepted": "accepted",
                 "over": "over tolerance", "only_a": "only in A", "only_b": "only in B"}


# --- terminal --------------------------------------------------------------------------------

def _table(head: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i])
                         for i, c in enumerate(cells)).rstrip()

    return [line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows]


def _pair_name(p: PairResult) -> str:
    return f"{p.subject}/{p.stage}/{p.kind}"


def _max_abs(p: PairResult) -> str:
    if not p.diff:
        return ""
    arrs = list(p.diff.arrays.values()) + (list(p.diff.catalog.columns.values())
                                           if p.diff.catalog else [])
    vals = [a.max_abs for a in arrs if a.mode in ("float", "exact")]
    return f"{max(vals):.3g}" if vals else ""


def text_summary(bd: BuildDiff, n_worst: int = 5) -> str:
    """A few aligned lines: counts, groups by cause, the worst products, the verdict."""
    c = bd.counts()
    t = bd.config.tolerance
    out = [f"calops diff {bd.build_a} -> {bd.build_b}  ({bd.diff_id}; rtol {t.rtol:g}, "
           f"atol {t.atol:g}{'; where ' + bd.where if bd.where else ''})", ""]
    out += _table(["pairs"] + [STATUS_TITLES[s] for s in STATUSES],
                  [[str(len(bd.pairs))] + [str(c[s]) for s in STATUSES]],
                  right=set(range(len(STATUSES) + 1)))
    groups = bd.groups()
    if groups:
        out += ["", "by cause (one line per difference in the recipes):"]
        for label, ps in groups.items():
            st: dict[str, int] = {}
            for p in ps:
                st[p.status] = st.get(p.status, 0) + 1
            head = f"  {len(ps):>4}  {', '.join(f'{n} {s}' for s, n in sorted(st.items())):<12}"
            for i, cause in enumerate(label.split("; ")):
                out.append((head if i == 0 else " " * len(head)) + "  " + cause)
    worst = bd.worst(n_worst)
    if worst:
        out += ["", "worst:"]
        rows = [[_pair_name(p), p.status, f"{p.score:.3g}", _max_abs(p), p.first_step or ""]
                for p in worst]
        out += ["  " + ln for ln in _table(["product", "status", "frac over", "max |Δ|",
                                            "first diverging step"], rows, right={2, 3})]
    n_fail = c["over"] + c["only_a"]
    out += ["", f"result: {'FAIL' if bd.failed else 'PASS'} ({c['over']} over tolerance, "
                f"{c['only_a']} missing in {bd.build_b}, {c['accepted']} accepted)"
            if n_fail or c["accepted"] else "result: PASS (no difference over tolerance)"]
    return "\n".join(out) + "\n"


def to_json(bd: BuildDiff) -> str:
    """The whole diff as JSON (pairs, per-array statistics, causes, groups, verdict)."""
    return json.dumps(clean_json(bd.to_dict()), indent=1, default=str, allow_nan=False) + "\n"


# --- pictures --------------------------------------------------------------------------------

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB image (h, w, 3) as PNG bytes (pure numpy + zlib)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def _diverging(d: np.ndarray) -> np.ndarray:
    """Blue (negative) - white - red (positive) colours, grey for NaN, scaled to max |d|."""
    lim = np.nanmax(np.abs(d)) if np.isfinite(d).any() else 0.0
    x = np.clip(np.nan_to_num(d / lim if lim > 0 else d * 0, nan=0.0), -1, 1)
    r = np.where(x > 0, 1.0, 1.0 + x)
    b = np.where(x < 0, 1.0, 1.0 - x)
    g = 1.0 - np.abs(x)
    rgb = (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)
    rgb[~np.isfinite(d)] = 128
    return rgb


def _simple_png(images: dict[str, np.ndarray], scale: int = 2) -> bytes:
    d = images["diff"]
    rgb = _diverging(d).repeat(max(1, scale), axis=0).repeat(max(1, scale), axis=1)
    return png_bytes(rgb[::-1])  # origin lower left, as astronomers draw images


def _mpl_png(p: PairResult, build_a: str, build_b: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    im = p.images
    fig = Figure(figsize=(13, 3.4), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 0.9]})
    finite = np.concatenate([im["a"][np.isfinite(im["a"])], im["b"][np.isfinite(im["b"])]])
    lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    for ax, key, title in ((axes[0], "a", build_a), (axes[1], "b", build_b)):
        m = ax.imshow(im[key], origin="lower", cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
        ax.set_title(f"{title}: data", fontsize=9)
        fig.colorbar(m, ax=ax, fraction=0.046)
    d = im["diff"]
    lim = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
    m = axes[2].imshow(d, origin="lower", cmap="RdBu_r", vmin=-lim or -1, vmax=lim or 1)
    axes[2].set_title(f"{build_b} − {build_a}", fontsize=9)
    fig.colorbar(m, ax=axes[2], fraction=0.046)
    for ax in axes[:3]:
        ax.set_xticks([])
        ax.set_yticks([])
    arr = p.diff.arrays.get("data") if p.diff else None
    if arr is not None and arr.hist_counts:
        from transforms.compare import hist_edges

        e = hist_edges()
        centers = np.concatenate([[e[0] - 0.5], (e[:-1] + e[1:]) / 2, [e[-1] + 0.5]])
        axes[3].bar(centers, arr.hist_counts, width=0.9, color="#555")
        tol = np.log10(arr.atol + arr.rtol * 1.0) if arr.atol + arr.rtol > 0 else None
        if tol is not None:
            axes[3].axvline(tol, color="r", lw=1, label="atol + rtol·1")
            axes[3].legend(fontsize=7)
        axes[3].set_yscale("symlog")
        axes[3].set_xlabel("log10 |Δ| (data)", fontsize=8)
        axes[3].set_title("differences", fontsize=9)
        axes[3].tick_params(labelsize=7)
    else:
        axes[3].axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def pair_png(p: PairResult, build_a: str, build_b: str) -> bytes | None:
    """The picture of one pair: data of A and B, their difference, the histogram."""
    if not p.images:
        return None
    try:
        return _mpl_png(p, build_a, build_b)
    except ImportError:
        return _simple_png(p.images)


# --- html ------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.2em .7em;border-bottom:1px solid #eee;
text-align:left;vertical-align:top} th{background:#f6f6f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.2em .8em;border-radius:1em;color:#fff;font-weight:600}
.PASS{background:#2a7d2a}.FAIL{background:#b22222}
.s-over,.s-only_a{color:#b22222;font-weight:600}.s-within{color:#7a6a00}.s-accepted{color:#2a5d9f}
.s-identical{color:#2a7d2a}
code{font-size:.92em;background:#f4f4f4;padding:0 .2em} img{max-width:100%;border:1px solid #ddd}
details{margin:.3em 0} .muted{color:#777}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _short(pid: str | None) -> str:
    if not pid:
        return ""
    algo, _, h = pid.partition(":")
    return f"{algo}:{h[:12]}…" if h else pid


def html_report(bd: BuildDiff, n_worst: int = 5) -> str:
    """The report as one self-contained HTML document."""
    c = bd.counts()
    t = bd.config.tolerance
    verdict = "FAIL" if bd.failed else "PASS"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>calops diff {_e(bd.build_a)} → {_e(bd.build_b)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>calops diff <code>{_e(bd.build_a)}</code> → <code>{_e(bd.build_b)}</code> "
             f"<span class='badge {verdict}'>{verdict}</span></h1>",
             f"<p class='muted'>{_e(bd.diff_id)} · {_e(bd.at.strftime('%Y-%m-%d %H:%M:%S UTC'))}"
             f" · rtol {t.rtol:g}, atol {t.atol:g} (|a−b| ≤ atol + rtol·|b|)"
             f"{' · per array: ' + _e(', '.join(f'{k} rtol {v.rtol:g} atol {v.atol:g}' for k, v in bd.config.per_array.items())) if bd.config.per_array else ''}"
             f" · NaN in both: {'equal' if bd.config.nan_equal else 'a difference'}"
             f"{' · where <code>' + _e(bd.where) + '</code>' if bd.where else ''}</p>",
             "<h2>Summary</h2><table><tr><th>pairs</th>"
             + "".join(f"<th>{_e(STATUS_TITLES[s])}</th>" for s in STATUSES) + "</tr><tr>"
             + f"<td class='n'>{len(bd.pairs)}</td>"
             + "".join(f"<td class='n s-{s}'>{c[s]}</td>" for s in STATUSES) + "</tr></table>"]
    groups = bd.groups()
    parts.append("<h2>Changes by cause</h2>")
    if not groups:
        parts.append("<p>No product differs.</p>")
    for label, ps in groups.items():
        rows = "".join(
            f"<tr><td>{_e(_pair_name(p))}</td><td class='s-{p.status}'>{_e(p.status)}</td>"
            f"<td>{_e(p.first_step)}</td><td class='n'>{p.score:.3g}</td><td class='n'>{_max_abs(p)}</td>"
            f"<td>{_e('; '.join(' ← '.join(c.via) for c in p.causes if c.via)[:200])}</td></tr>"
            for p in ps)
        parts.append(
            f"<details open><summary><b>{len(ps)}</b> product{'s' if len(ps) != 1 else ''}: "
            f"{_e(label)}</summary><table><tr><th>product</th><th>status</th>"
            f"<th>first diverging step</th><th>frac over</th><th>max |Δ|</th><th>via</th></tr>"
            f"{rows}</table></details>")
    worst = bd.worst(n_worst)
    parts.append("<h2>Worst products</h2>")
    if not worst:
        parts.append("<p>None.</p>")
    for p in worst:
        parts.append(f"<h3>{_e(_pair_name(p))} <span class='s-{p.status}'>{_e(p.status)}</span></h3>")
        parts.append(f"<p class='muted'>{_e(_short(p.product_a))} → {_e(_short(p.product_b))}"
                     f"{' · instrument ' + _e(p.instrument) if p.instrument else ''}</p>")
        if p.diff and p.diff.reasons:
            parts.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in p.diff.reasons) + "</ul>")
        if p.diff and not p.diff.reasons:
            parts.append("<p>within tolerance" + (
                f"; differs in metadata that is not compared: {_e(', '.join(p.diff.meta_ignored))}"
                if p.diff.meta_ignored else "") + "</p>")
        if p.accepted:
            parts.append(f"<p>accepted by {_e(p.accepted.get('who'))}: {_e(p.accepted.get('why'))}</p>")
        png = pair_png(p, bd.build_a, bd.build_b)
        if png:
            b64 = base64.b64encode(png).decode()
            parts.append(f"<img alt='difference image of {_e(_pair_name(p))}' "
                         f"src='data:image/png;base64,{b64}'>")
        if p.diff and p.diff.catalog:
            cd = p.diff.catalog
            parts.append(f"<p>sources: {cd.n_matched} matched within {cd.radius_arcsec}″ "
                         f"(max separation {cd.max_sep_arcsec:.3g}″), {cd.n_only_a} only in "
                         f"{_e(bd.build_a)}, {cd.n_only_b} only in {_e(bd.build_b)}</p>")
        if p.diff:
            arrs = list(p.diff.arrays.values()) + (list(p.diff.catalog.columns.values())
                                                   if p.diff.catalog else [])
            rows = "".join(
                f"<tr><td>{_e(a.name)}</td><td>{_e(a.mode)}</td><td class='n'>{a.n_over}</td>"
                f"<td class='n'>{a.n}</td><td class='n'>{a.max_abs:.3g}</td>"
                f"<td class='n'>{a.max_rel:.3g}</td><td class='n'>{a.nan_only_a + a.nan_only_b}</td>"
                f"<td>{_e(', '.join([f'+{k} {v}' for k, v in a.dq_gained.items()] + [f'-{k} {v}' for k, v in a.dq_lost.items()]) or a.note)}</td></tr>"
                for a in arrs if a.n_over or a.mode == "structural")
            if rows:
                parts.append("<table><tr><th>array</th><th>mode</th><th>over</th><th>of</th>"
                             "<th>max |Δ|</th><th>max rel</th><th>NaN in one</th><th>flags / note</th>"
                             f"</tr>{rows}</table>")
    parts.append(report_spec.section(bd))  # 1-D spectra: overlays and ratios (flows/report_spec.py)
    parts.append("<h2>All pairs</h2><details><summary>show all "
                 f"{len(bd.pairs)}</summary><table><tr><th>product</th><th>status</th>"
                 "<th>A</th><th>B</th><th>cause</th></tr>")
    parts += [f"<tr><td>{_e(_pair_name(p))}</td><td class='s-{p.status}'>{_e(p.status)}</td>"
              f"<td><code>{_e(_short(p.product_a))}</code></td><td><code>{_e(_short(p.product_b))}</code></td>"
              f"<td>{_e(p.group)}</td></tr>" for p in bd.pairs]
    parts.append("</table></details>")
    parts.append("<p class='muted'>Written by <code>calops diff</code>; the same results are rows "
                 f"of the catalog's <code>diffs</code> table with diff_id <code>{_e(bd.diff_id)}</code>.</p>"
                 "</body></html>\n")
    return "".join(parts)
