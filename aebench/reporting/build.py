"""``aebench report``: ``README.md`` (the first screen), a page per table and per sweep, ``report.tex``,
``tables/*.csv``, ``figures/`` and the manifest (``manifest.py``), all from the one statistics frame, deterministic.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from aebench.errors import UserError
from aebench.files import read_text, safe_folder, write_text
from aebench.reporting import figures, words
from aebench.reporting.cost import COST, FIT, ONE_OFF, equivalent_curves, read_off
from aebench.reporting.document import PROSE, Block, latex, markdown
from aebench.reporting.manifest import claim, finish
from aebench.reporting.rows import SETTING, axes_of, curves, in_order, read_samples, setting_words, skipped, text
from aebench.reporting.stats import ALPHA, analyse
from aebench.reporting.study import STUDY, Comparison, comparison
from aebench.results.schema import METRIC_DEFINITIONS, QUALITY, SPECS

NOTES_FILE, NOTES_BYTES, NOTES_LIMIT = "NOTES.md", 2**20, 20_000
SHOWN = (*QUALITY, "train_seconds")
COSTS, COST_LABEL = (COST, FIT, ONE_OFF), "Cost vs baseline (controlled)"


def run_notes(folder: str) -> str | None:
    path = Path(folder) / NOTES_FILE
    try:
        return read_text(path, NOTES_BYTES)[:NOTES_LIMIT].strip()
    except (UserError, OSError) as exc:
        if not isinstance(exc, FileNotFoundError):  # absent: no notes, said nowhere
            skipped(path, exc)
        return None


def results_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Technique × metric, mean ± sd, bold where 'best'; the controlled cost where measured; seeds, flags."""
    table, costs = {}, stats[stats["metric"].isin(COSTS)]
    for technique, mine in stats[stats["metric"].isin(SHOWN)].groupby("technique", sort=False):
        cells = {"Technique": technique}
        for r in mine.to_dict("records"):
            text = words.mean_sd(r["metric"], r["mean"], r["sd"])
            cells[SPECS[r["metric"]].label] = f"**{text}**" if r["standing"] == "best" else text
        if len(costs):
            cells[COST_LABEL] = words.cost_words(costs[costs["technique"] == technique]) or "not measured"
        cells.update(Seeds=str(int(mine["n"].max())), Flags="; ".join(dict.fromkeys(f for f in mine["flag"] if f)))
        table[technique] = cells
    return pd.DataFrame(list(table.values()))


def differences_table(stats: pd.DataFrame) -> pd.DataFrame:
    rows = [{"Technique": r["technique"], "Metric": SPECS[r["metric"]].label,
             "Δ": f"{r['diff']:+.{SPECS[r['metric']].digits}f}",
             "95 % CI": f"[{r['diff_low']:+.{SPECS[r['metric']].digits}f}, {r['diff_high']:+.{SPECS[r['metric']].digits}f}]",
             "p": words.p_text(r["p"]), "Holm p": words.p_text(r["p_holm"]), "Difference": words.test_words(r, caveat=False)}
            for r in stats.to_dict("records") if r["note"] != "the baseline" and r["pairs"] > 0]  # fmt: skip
    return pd.DataFrame(rows)


def reproduction_table(comp: Comparison) -> pd.DataFrame:
    """The first screen's table: per technique, for MAE, MSE and accuracy the study's value, ours and the gap."""
    out = {}
    for r in comp.frame.to_dict("records"):
        label = SPECS[r["metric"]].label
        cells = out.setdefault(r["technique"], {"Technique": r["technique"]})
        mark = {True: " ✓", False: " ✗"}.get(r["inside"], "")
        cells[f"{label}: study"] = f"{r['study']:.6g}"
        cells[f"{label}: ours"] = words.mean_sd(r["metric"], r["mean"], r["sd"])
        cells[f"{label}: Δ"] = f"{r['diff']:+.1f} {r['unit']}{mark}"
    return pd.DataFrame(list(out.values())).fillna("")


def intervals_table(comp: Comparison) -> pd.DataFrame:
    rows = [{"Technique": r["technique"], "Metric": SPECS[r["metric"]].label, "Study": f"{r['study']:.6g}",
             "Ours: 95 % prediction interval": "–" if r["inside"] is None else
             f"[{words.number(r['metric'], r['pi_low'])}, {words.number(r['metric'], r['pi_high'])}]",
             "Inside": {True: "yes", False: "no"}.get(r["inside"], "–")} for r in comp.frame.to_dict("records")]  # fmt: skip
    return pd.DataFrame(rows)


def cost_table(comp: Comparison) -> pd.DataFrame:
    rows = [{"Technique": r["technique"], "The study: time ÷ its baseline's": f"{r['study']:.2f}×",
             "Ours: controlled ratio [95 % CI]": words.ratio({**r, "mean": r["ours"]}),
             "Study's inside ours": {True: "yes", False: "no"}.get(r["inside"], "–")}
            for r in comp.cost.to_dict("records")]  # fmt: skip
    return pd.DataFrame(rows)


def study_blocks(comp: Comparison, stats: pd.DataFrame, first: bool, said: tuple[str, ...] = ()) -> list[Block]:
    """The study's verdicts and tables, ``first``: with the best; its differences less those ``said``."""
    n = int(comp.frame["n"].max())
    blocks = [Block("p", words.study_verdict(comp))]
    tag = f" ({comp.proxy})" * bool(comp.proxy) + words.so_far(comp)  # a proxy's label; the techniques judged
    blocks += [Block("p", f"The study's claim{tag}: " + words.claim_verdict(c, s)) for c, s in comp.claims]
    blocks.append(Block("table", frame=reproduction_table(comp), note=f"{comp.proxy}. " * bool(comp.proxy)
                        + PROSE.repro_note(n)))  # fmt: skip
    if len(comp.cost):
        note = PROSE.cost_note(comp.study.hardware, comp.cost["pace"].iloc[0])
        blocks += [Block("p", words.study_cost_verdict(comp)), Block("table", frame=cost_table(comp), note=note)]
    if first:
        shown = stats[stats["metric"].isin(SHOWN)]
        blocks += [Block("p", f"**Best here** ({n} seeds; {words.best_rule(shown)}):"),
                   Block("ul", items=words.best_items(shown))]  # fmt: skip
    box = [line for line in comp.differences if line not in said]
    also = " (and as on the [first screen](README.md))" if len(box) < len(comp.differences) else ""
    blocks += [Block("p", f"**Set differently from the study{also}:**"), Block("box", items=box)]
    return blocks


def page(table: str, rows, stats: pd.DataFrame, flags: pd.DataFrame, comp, figs, notes, firsts: list) -> list[Block]:
    """One table's page: its setting, results, differences from the baseline, flags, study, figures, notes."""
    setting = setting_words(rows.iloc[0].to_dict(), [*SETTING[2:], *axes_of(rows)])
    shown = stats[stats["metric"].isin(SHOWN)]
    note = words.cost_note(stats) if stats["metric"].isin(COSTS).any() else ""
    caveats = shown.loc[shown["caveat"] != "", "caveat"]  # the time caveat, said once under the table
    times = f"Train times are {caveats.iloc[0]}: no time difference is ranked." if len(caveats) else ""
    blocks = [Block("h", table, 1), Block("p", f"[← the report](README.md) · _{setting}_"),
              Block("table", frame=results_table(stats), note=note), Block("p", "Best: " + words.best_line(shown)),
              Block("h", "Differences from the baseline", 2),
              Block("p", PROSE.convention(int(stats["tests"].max()), ALPHA)),
              Block("table", frame=differences_table(shown), note=times)]  # fmt: skip
    flagged = [f"**{label}**: {reason}" for label, reason in zip(flags["label"], flags["reason"])]
    blocks += [Block("h", "Flags", 2), Block("ul", items=flagged)] if len(flags) else []
    if comp is not None:
        first = any(comp is c for c in firsts)
        shown = [Block("p", "Its verdict, table and settings: on the [first screen](README.md).")] if first else []
        said = next((tuple(c.differences) for c in firsts if c.study.name == comp.study.name), ())
        blocks += [Block("h", f"Beside the study ({comp.study.name})", 2),
                   *(shown or study_blocks(comp, stats, False, said))]  # fmt: skip
        blocks.append(Block("table", frame=intervals_table(comp), note=comp.proxy))
    blocks += [Block("h", "Figures", 2), *figs]
    bad = rows[rows["status"] != "ok"]
    if len(bad):
        listing = [f"{t} (seeds {', '.join(map(str, sorted(g['seed'])))}): {s}: {r}"
                   for (t, s, r), g in bad.groupby(["technique", "status", "reason"], sort=False)]  # fmt: skip
        blocks += [Block("h", "Not in the tables", 2), Block("ul", items=listing)]
    return blocks + [b for text in notes for b in (Block("h", "How the results were made", 2), Block("pre", text))]


def draw(out: Path, table: str, stem: str, ok, stats, flags, points, comp, colours) -> tuple[list[Block], list[Path]]:
    """The table's figures, saved (with the equal-time read-off after its figure); their blocks and files."""
    made = [("metrics", figures.metrics(stats[stats["metric"].isin(SHOWN)], colours, table), "mean and 95 % CI")]
    title = f"{table} ({comp.proxy})" if comp is not None and comp.proxy else table  # beside the study's numbers
    if comp is not None:
        made.append(("study", figures.beside_study(comp.frame, colours, title), "the study's value on our interval"))
    mine = points[points["table"] == table]
    if len(mine) or (comp is not None and len(comp.curves)):
        study = comp.curves if comp is not None else pd.DataFrame(columns=["technique", "epoch", "test_mse"])
        made.append(("curves", figures.learning_curves(mine, study, colours, title), "test MSE per epoch"))
    equal = equivalent_curves(mine, stats)
    if len(equal):
        ranked = read_off(equal, stats)
        horizon = ranked["horizon"].iloc[0] if len(ranked) else float("nan")
        caption = "test MSE against baseline-equivalent time (epochs × controlled cost ratio)"
        made.append(("cost", figures.equal_time(equal, horizon, colours, title), caption,
                     words.read_off_line(ranked, stats)))  # fmt: skip
    seed = min(ok["seed"]) if ok.groupby("technique")["seed"].min().nunique() == 1 else None
    firsts = ok.sort_values("seed").groupby("technique", sort=False).first().reset_index()
    samples = {r["technique"]: s for r in firsts.to_dict("records") if (s := read_samples(r)) is not None}
    if samples:
        mine = flags[flags["seed"].isna() | (flags["seed"] == seed)]
        notes = {t: "; ".join(mine.loc[mine["technique"] == t, "label"]) for t in mine["technique"].dropna()}
        made.append(("reconstructions", figures.reconstructions(samples, notes, table), f"seed {seed}"))
    blocks, files = [], []
    for name, fig, caption, *after in made:
        files += figures.save(fig, out, f"{name}_{stem}")
        blocks += [Block("figure", stem=f"figures/{name}_{stem}", caption=f"{table}: {caption}")]
        blocks += [Block("p", text) for text in after if text]
    return blocks, files


def axis_table(series: pd.DataFrame) -> pd.DataFrame:
    """Per technique and point: each measure's difference from the reference and its Holm p, bold where real."""
    out = {}
    for r in series[(series["ref_note"] != "the reference") & series["metric"].isin(QUALITY)].to_dict("records"):
        point = text(r["point"])
        cells = out.setdefault((r["technique"], point), {"Technique": r["technique"], r["axis"]: point})
        diff = "–" if pd.isna(r["ref_diff"]) else f"{r['ref_diff']:+.{SPECS[r['metric']].digits}f}"
        cell = f"{diff} ({'not tested' if r['ref_note'] else 'Holm p ' + words.p_text(r['ref_p_holm'])})"
        cells[SPECS[r["metric"]].label] = f"**{cell}**" if r["ref_significant"] else cell
    return pd.DataFrame(list(out.values()))


def sweeps(out: Path, stats: pd.DataFrame, stems: dict, colours: dict) -> list[tuple[str, str, list[Block], list]]:
    """One page per series along an axis: the lines in words, the figure, the differences from the reference."""
    made = []
    for series, mine in stats[stats["series"].notna()].groupby("series", sort=False):
        mine = in_order(mine)
        stem = "axis_" + re.sub(r"[^0-9A-Za-z._]+", "-", series).strip("-_")
        files = [*figures.save(figures.along_axis(mine, colours, series), out, stem), out / f"{stem}.md"]
        points = [f"[{text(p)}]({stems[t]}.md)" for t, p in dict(zip(mine["table"], mine["point"])).items()]
        blocks = [Block("h", f"{series}: along {mine['axis'].iloc[0]}", 1),
                  Block("p", f"[← the report](README.md) · each point's table: {', '.join(points)}"),
                  Block("ul", items=words.axis_lines(mine)),
                  Block("figure", stem=f"figures/{stem}", caption=f"{series}: each measure against the axis"),
                  Block("table", frame=axis_table(mine), note=PROSE.axis_note(words.reference(mine), ALPHA))]  # fmt: skip
        write_text(out / f"{stem}.md", markdown(blocks))
        made.append((f"[{series}: each measure against {mine['axis'].iloc[0]}]({stem}.md)", stem, blocks, files))
    return made


def stamp(frame: pd.DataFrame, command: str) -> list[str]:
    ok = frame[frame["status"] == "ok"]
    seen = {c: ", ".join(sorted({str(v) for v in frame[c].dropna()})) or "not recorded" for c in frame.columns}
    dated = sorted(str(v) for v in frame["finished_at"].dropna())
    versions = ", ".join(
        f"{v}: {METRIC_DEFINITIONS[v]}" for v in sorted({int(x) for x in ok["metric_version"].dropna()})
    )
    return [f"aebench {seen['aebench_version']}, commits {seen['git_commit']}, torch {seen['torch_version']}",
            f"devices {seen['device']}, precision {seen['precision']}",
            f"compute: {ok['train_seconds'].sum() + ok['eval_seconds'].sum():.0f} s training and evaluation over "
            f"{len(ok)} cells", f"results dated {dated[0] if dated else '?'} to {dated[-1] if dated else '?'}",
            f"finished rows not shown (earlier configs, other recipes): {frame.attrs.get('superseded', 0)}",
            f"metric versions: {versions or 'not recorded (SSIM compares within a table only)'}",
            f"regenerate: `{command}`"]  # fmt: skip


def write_report(folders: list[Path], out: Path, command: str, force: bool = False) -> Path:
    folders = [Path(f) for f in folders]
    frame, ok, flags, stats = analyse(folders)
    if frame.empty:
        raise UserError(f"{', '.join(map(str, folders))}: results.jsonl has no rows yet (run an experiment first)")
    previous = claim(out, folders, force)
    safe_folder(out, out / "tables")
    points = curves(ok)
    colours = figures.palette(list(dict.fromkeys(ok["technique"])))
    tables = list(dict.fromkeys(ok["table"]))
    comps = {t: c for t in tables if (c := comparison(t, stats[stats["table"] == t], frame[frame["table"] == t]))}
    written, pages, shown_notes = [], [], set()
    # per study, its first screen shows the table closest to it (judged, its shared setting, its protocol, its techniques)
    firsts = {min((t for t, c in comps.items() if c.study.name == name), key=lambda t: comps[t].closeness)
              for name in {c.study.name for c in comps.values()}}  # fmt: skip
    for table in tables:
        rows, mine = frame[frame["table"] == table], ok[ok["table"] == table]
        stem = str(rows["stem"].iloc[0])
        figs, files = draw(out, table, stem, mine, stats[stats["table"] == table], flags[flags["table"] == table],
                           points, comps.get(table), colours)  # fmt: skip
        notes = [n for f in dict.fromkeys(rows["results_folder"]) if f not in shown_notes and (n := run_notes(f))]
        shown_notes.update(rows["results_folder"])
        blocks = page(table, rows, stats[stats["table"] == table], flags[flags["table"] == table], comps.get(table),
                      figs, notes, [comps[t] for t in firsts])  # fmt: skip
        write_text(out / f"{stem}.md", markdown(blocks))
        written += [out / f"{stem}.md", *files]
        pages.append((table, stem, blocks))
    head = [Block("h", "aebench report", 1),
            Block("p", f"_Generated by `{command}` from raw results; do not edit by hand._")]  # fmt: skip
    for table in (t for t in comps if t in firsts):
        head += [Block("h", f"{comps[table].study.name}: does the study reproduce, and which technique is best?", 2),
                 Block("p", f"Table [{table}]({pages[tables.index(table)][1]}.md) beside {STUDY}."),
                 *study_blocks(comps[table], stats[stats["table"] == table], True)]  # fmt: skip
        also = [f"[{t}]({pages[tables.index(t)][1]}.md): {words.study_verdict(c, short=True)}" for t, c in comps.items()
                if t != table and c.study.name == comps[table].study.name and c.closeness[:2] == (False, 0)]  # fmt: skip
        head += [Block("p", "**The other tables beside the study:**"), Block("ul", items=also)] if also else []
    along = sweeps(out, stats, {t: s for t, s, _ in pages}, colours)
    written += [f for *_, files in along for f in files]
    links = [f"[{t}]({s}.md): {words.short_line(stats[stats['table'] == t])}" for t, s, _ in pages]
    head += [Block("h", "Along an axis", 2), Block("ul", items=[a[0] for a in along])] if along else []
    head += [Block("h", "Every table", 2), Block("ul", items=links), Block("h", "How to read the numbers", 2),
             Block("ul", items=PROSE.reading().split("\n")), Block("h", "Provenance", 2),
             Block("ul", items=stamp(frame, command))]  # fmt: skip
    write_text(out / "README.md", markdown(head))
    write_text(out / "report.tex", latex(head + [b for _, _, blocks, *_ in [*along, *pages] for b in blocks]))
    csvs = {"statistics": stats, "flags": flags.drop(columns="metrics"), "unfinished": frame[frame["status"] != "ok"][
        ["table", "experiment", "dataset", "technique", "seed", "status", "reason"]]}  # fmt: skip
    csvs["study"] = pd.concat([c.frame.assign(table=t) for t, c in comps.items()]) if comps else pd.DataFrame()
    if len(ranked := read_off(equivalent_curves(points, stats), stats)):
        csvs["equal_time"] = ranked
    for name, data in csvs.items():
        write_text(out / "tables" / f"{name}.csv", data.to_csv(index=False, float_format="%.10g"))
    written += [out / "README.md", out / "report.tex", *(out / "tables" / f"{n}.csv" for n in csvs)]
    finish(out, previous, folders, written)
    return out / "README.md"
