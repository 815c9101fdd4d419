"""The scaling plot of ``noisereg bench --write``: PEGR step time and peak memory against batch
size and width, ghost norms vs torch.func vmap (rows from :func:`bench.gradreg.scaling_table`)."""

from __future__ import annotations

from pathlib import Path

from noisereg.lab._plotting import plt, save
from noisereg.lab.bench.gradreg import scaling_table


def plot_scaling(outdir: Path, name: str = "scaling.png") -> str:
    rows = scaling_table()
    widths = sorted({r["width"] for r in rows})
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for backend, style in (("plain", ":"), ("ghost", "-"), ("vmap", "--")):
        for i, width in enumerate(widths):
            sel = [r for r in rows if r["backend"] == backend and r["width"] == width]
            batch = [r["batch"] for r in sel]
            kw = {"linestyle": style, "color": f"C{i}", "marker": "o",
                  "label": f"{backend}, width {width}"}
            ax_t.plot(batch, [1e3 * r["seconds"] for r in sel], **kw)
            ax_m.plot(batch, [r["peak_mb"] for r in sel], **kw)
    ax_t.set(xscale="log", yscale="log", xlabel="batch size", ylabel="step time (ms)")
    # symlog: steps that allocate almost nothing beyond the resident set measure ~0 MB
    ax_m.set(xscale="log", xlabel="batch size", ylabel="peak memory of a step (MB)")
    ax_m.set_yscale("symlog", linthresh=1.0)
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
    ax_t.set_title("PEGR step, MLP 784-w-w-10")
    ax_m.set_title("memory above the resident set")
    ax_m.legend(fontsize=7, ncol=3)
    return save(fig, outdir, name)
