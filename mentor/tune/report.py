"""``mentor tune-report``: what a study found, as a table, importances and plots.

The report of a tuning folder (``tunes/NAME``, made by ``mentor tune``) reads its Optuna study
and the run folders of its trials, and writes under ``<folder>/report/``:

    index.html               one self-contained page (images by relative path): the study, the
                             trials table, the tuning overhead, the importances, the re-check
                             table, best.yaml and the plots below
    importances.json         each parameter's importance (Optuna's PED-ANOVA evaluator: how much
                             it sets the best trials apart), or why there are none
    history.png              each complete trial's score and the best so far (Optuna's plot)
    parallel.png             the parameters of the complete trials, coloured by score (Optuna's)
    importances.png          the importances as bars (Optuna's)
    best_curves.png          the best trial's validation return against steps, one line per seed
                             of the search (solid) and of the re-check (dashed)
    recheck.png              each re-checked trial's IQM over the fresh seeds with its 95% CI,
                             its per-seed scores and its search score

The trials table is sorted by score (complete trials first, then pruned, then failed); its
overhead column is the tuning's own share of each trial's time, beyond its runs,
(wall_seconds - run_seconds) / wall_seconds: sampling, storage, scoring, trial bookkeeping (the
goal: under 5%; the runs' own setup, validation and evaluation are the runs'). A plot that
cannot be drawn (too few trials) is skipped with a note instead. The report only reads the
study: it never runs a trial.
"""

from __future__ import annotations

import csv
import html
import json
import math
import statistics
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentor.errors import ConfigError
from mentor.tune.study import open_storage, optuna_module, read_json

OVERHEAD_GOAL = 0.05  # mentor's share of a trial's time, beyond training, that an issue asks for
STABLE_TRIALS = 50  # PED-ANOVA wants 5 trials in its top 10% (Optuna's docs)
CONSOLE_ROWS = 25  # trials printed on the console; the page has them all
STATE_ORDER = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "fail": 4}


# --- the study -------------------------------------------------------------------------------


def open_study(folder: Path, storage: str | None) -> tuple[Any, str]:
    """(The study of a tuning folder, its storage URL): the only study in the storage, or the
    one named like the folder. A ConfigError says what is missing and what would do."""
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: no such folder; give a tuning folder made by mentor tune (tunes/NAME, "
            "holding study.db)"
        )
    url = storage or _default_url(folder)
    _check_sqlite_file(url)
    optuna = optuna_module()
    opened = open_storage(url, heartbeat_seconds=30)  # only read: no trial runs here
    names = optuna.study.get_all_study_names(storage=opened)
    if not names:
        raise ConfigError(f"{url} holds no study: run mentor tune FILE --storage {url} first")
    name = names[0] if len(names) == 1 else folder.name
    if name not in names:
        raise ConfigError(
            f"{url} holds {len(names)} studies ({', '.join(sorted(names))}) and none is named "
            f"like the folder '{folder.name}', which picks one: give the folder tunes/NAME of "
            "one of them"
        )
    return optuna.load_study(study_name=name, storage=opened), url


def _default_url(folder: Path) -> str:
    database = folder / "study.db"
    if not database.is_file():
        raise ConfigError(
            f"{folder}: no study.db here, so no study to report on; give a tuning folder made "
            "by mentor tune (tunes/NAME), or --storage URL for a study stored elsewhere"
        )
    return f"sqlite:///{database.resolve()}"


def _check_sqlite_file(url: str) -> None:
    """Opening a SQLite URL makes its file: a missing one is refused instead of made empty."""
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and path and path != ":memory:" and not Path(path).exists():
        raise ConfigError(f"--storage '{url}': no such file {path}")


@dataclass
class TrialRow:
    """One trial as the report shows it."""

    number: int
    state: str  # complete, pruned, fail, running, waiting
    score: float | None  # complete trials only: a pruned one's value is a running score
    train_seconds: float | None
    run_seconds: float | None  # the runs whole (api.train): setup, validation, evaluation too
    wall_seconds: float | None
    params: dict[str, Any]
    note: str  # the error, or where the pruner stopped it

    @property
    def overhead(self) -> float | None:
        """The tuning's share of the trial's time: beyond its runs (sampling, storage,
        scoring, trial bookkeeping)."""
        if self.run_seconds is None or not self.wall_seconds or self.wall_seconds <= 0:
            return None
        return (self.wall_seconds - self.run_seconds) / self.wall_seconds


def trial_rows(study: Any) -> list[TrialRow]:
    """The study's trials, best first: complete by score, then pruned, running, failed."""
    rows = [_row(trial) for trial in study.get_trials(deepcopy=False)]
    return sorted(rows, key=_rank)


def _row(trial: Any) -> TrialRow:
    attrs = trial.user_attrs
    state = trial.state.name.lower()
    value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
    note = attrs.get("error", "")
    if state == "pruned" and trial.last_step is not None:
        running = trial.intermediate_values[trial.last_step]
        note = note or f"pruned at step {trial.last_step:,}, running score {running:.2f}"
    return TrialRow(
        number=trial.number,
        state=state,
        score=value if state == "complete" else None,
        train_seconds=attrs.get("train_seconds"),
        run_seconds=attrs.get("run_seconds"),
        wall_seconds=attrs.get("wall_seconds"),
        params=dict(trial.params),
        note=note,
    )


def _rank(row: TrialRow) -> tuple[int, float, int]:
    score = -row.score if row.score is not None else math.inf
    return (STATE_ORDER.get(row.state, len(STATE_ORDER)), score, row.number)


def overhead_line(rows: list[TrialRow]) -> str:
    """The tuning overhead over the complete trials: the median trial's and the total share."""
    timed = [row for row in rows if row.state == "complete" and row.overhead is not None]
    if not timed:
        return "tuning overhead: no complete trial with timings yet"
    median = statistics.median(row.overhead or 0.0 for row in timed)
    wall = sum(row.wall_seconds or 0.0 for row in timed)
    total = (wall - sum(row.run_seconds or 0.0 for row in timed)) / wall
    verdict = "met" if median < OVERHEAD_GOAL else "not met"
    return (
        f"tuning overhead (a trial's time beyond its runs): median {median:.1%}, total "
        f"{total:.1%} over {_trials(len(timed))}; goal under {OVERHEAD_GOAL:.0%}: {verdict}"
    )


# --- importances -----------------------------------------------------------------------------


@dataclass
class Importances:
    """Each parameter's importance, best first, or (empty) the reason there are none."""

    values: dict[str, float]
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "evaluator": "PedAnovaImportanceEvaluator",
            "importances": self.values,
            "note": self.note,
        }


def param_importances(study: Any) -> Importances:
    """Optuna's PED-ANOVA importances (no extra package, unlike fANOVA's scikit-learn); its
    warnings (too few trials) become the note."""
    optuna = optuna_module()
    complete = _complete(study)
    if len(complete) < 2:
        return Importances({}, f"none: {_trials(len(complete))}, importances need 2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        except Exception as exc:  # a search space Optuna cannot compare across trials
            return Importances({}, f"none: {type(exc).__name__}: {exc}".splitlines()[0])
    experimental = optuna.exceptions.ExperimentalWarning
    said = dict.fromkeys(str(w.message) for w in caught if w.category is not experimental)
    note = f"from {_trials(len(complete))}" + "".join(f"; {s}" for s in said)
    if len(complete) < STABLE_TRIALS:
        note += f" (a rough guide: PED-ANOVA is stable from about {STABLE_TRIALS} trials)"
    return Importances({name: float(v) for name, v in values.items()}, note)


def _trials(count: int) -> str:
    return f"{count} complete trial" + ("" if count == 1 else "s")


def _complete(study: Any) -> list[Any]:
    complete = optuna_module().trial.TrialState.COMPLETE
    trials = study.get_trials(deepcopy=False, states=(complete,))
    return [t for t in trials if t.value is not None and math.isfinite(t.value)]


# --- the re-check and the winner -------------------------------------------------------------


def best_line(study: Any, winner: dict[str, Any] | None) -> tuple[int | None, str]:
    """(the best trial's number, a sentence about it): the re-check's winner where one ran,
    else the search's best trial."""
    if winner:
        low, high = winner["ci"]
        seeds = ", ".join(str(seed) for seed in winner["seeds"])
        return winner["trial"], (
            f"best: trial {winner['trial']}, {winner.get('metric', 'score')} IQM "
            f"{winner['iqm']:.2f} [{low:.2f}, {high:.2f}] on the re-check's seeds {seeds} "
            f"(search score {winner['search_score']:.2f})"
        )
    complete = _complete(study)
    if not complete:
        return None, "best: none yet (no complete trial)"
    best = max(complete, key=lambda trial: trial.value)
    return best.number, f"best: trial {best.number}, search score {best.value:.2f} (not re-checked)"


# --- plots -------------------------------------------------------------------------------------


@dataclass
class Plot:
    """A PNG of the report, or the note saying why it was not drawn."""

    file: str
    title: str
    note: str = ""


def save_plots(
    study: Any, folder: Path, out: Path, best: int | None, recheck: list[dict[str, Any]]
) -> list[Plot]:
    """Draw every plot of the report into ``out``; one that cannot be drawn gets a note."""
    plt = _pyplot()
    visual = optuna_module().visualization.matplotlib
    evaluator = optuna_module().importance.PedAnovaImportanceEvaluator
    complete = len(_complete(study))

    def optuna_plot(draw: Callable[[], Any], needs: int) -> Callable[[Path], None]:
        def save(path: Path) -> None:
            if complete < needs:
                raise _Skip(f"needs {_trials(needs)}, the study has {complete}")
            before = set(plt.get_fignums())
            try:
                draw().figure.savefig(path, dpi=110, bbox_inches="tight")
            finally:  # Optuna's plots open pyplot figures: close them, even half drawn
                for number in set(plt.get_fignums()) - before:
                    plt.close(number)

        return save

    def importances() -> Any:
        return visual.plot_param_importances(study, evaluator=evaluator(), target_name="score")

    jobs: list[tuple[str, str, Callable[[Path], None]]] = [
        ("history.png", "Optimization history", optuna_plot(
            lambda: visual.plot_optimization_history(study, target_name="score"), needs=1)),
        ("parallel.png", "Parallel coordinates", optuna_plot(
            lambda: visual.plot_parallel_coordinate(study, target_name="score"), needs=2)),
        ("importances.png", "Parameter importances", optuna_plot(importances, needs=2)),
        ("best_curves.png", "The best trial's learning curves",
         _figure(lambda ax: _best_curves(ax, folder, best))),
        ("recheck.png", "The re-check on fresh seeds", _figure(lambda ax: _recheck(ax, recheck))),
    ]  # fmt: skip
    return [_save(out, file, title, save) for file, title, save in jobs]


class _Skip(Exception):
    """A plot with nothing to show: its message is the report's note."""


def _save(out: Path, file: str, title: str, save: Callable[[Path], None]) -> Plot:
    import matplotlib

    path = out / file
    path.unlink(missing_ok=True)  # no stale plot of an earlier report
    with warnings.catch_warnings(), matplotlib.rc_context():  # Optuna's plots set a style
        warnings.simplefilter("ignore")
        try:
            save(path)
        except _Skip as skip:
            return Plot(file, title, f"not drawn: {skip}")
        except Exception as exc:  # Optuna's plots refuse some studies: a note, not a crash
            return Plot(file, title, f"not drawn: {type(exc).__name__}: {exc}".splitlines()[0])
    return Plot(file, title)


def _pyplot() -> Any:
    """pyplot on the Agg backend, unless the caller already chose one (a notebook's)."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(draw: Callable[[Any], None]) -> Callable[[Path], None]:
    """A plot of one axes of mentor's own (no pyplot: nothing global is touched)."""

    def save(path: Path) -> None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7.5, 4.5), layout="constrained")
        draw(figure.subplots())
        figure.savefig(path, dpi=110)

    return save


def _best_curves(ax: Any, folder: Path, best: int | None) -> None:
    if best is None:
        raise _Skip("no complete trial")
    drawn = 0
    for kind, style in (("trials", "-"), ("recheck", "--")):
        runs = sorted((folder / kind / f"{best:04d}").glob("seed-*/validation.csv"), key=_seed)
        for path in runs:
            steps, returns = _curve(path)
            label = f"seed {_seed(path)}" + (" (re-check)" if kind == "recheck" else "")
            ax.plot(steps, returns, style, marker=".", label=label)
            drawn += 1
    if not drawn:
        raise _Skip(f"no validation.csv under {folder / 'trials' / f'{best:04d}'}")
    ax.set(
        xlabel="environment steps",
        ylabel="validation return (mean)",
        title=f"trial {best}: validation return per seed",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def _seed(path: Path) -> int:
    name = path.parent.name.removeprefix("seed-")
    return int(name) if name.lstrip("-").isdigit() else 0


def _curve(path: Path) -> tuple[list[int], list[float]]:
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("return_mean") not in (None, "")]
    return [int(float(row["step"])) for row in rows], [float(row["return_mean"]) for row in rows]


def _recheck(ax: Any, recheck: list[dict[str, Any]]) -> None:
    if not recheck:
        raise _Skip("no recheck.json (the re-check runs at the end of mentor tune)")
    winner = max(range(len(recheck)), key=lambda i: _finite(recheck[i]["iqm"], -math.inf))
    for x, row in enumerate(recheck):
        scores = row["scores"]
        spread = [
            x + 0.12 * (i - (len(scores) - 1) / 2) / max(1, len(scores)) for i in range(len(scores))
        ]
        ax.scatter(
            spread, scores, s=14, color="0.55", zorder=2, label="per seed" if x == 0 else None
        )
        low, high = (_finite(v, row["iqm"]) for v in row["ci"])
        color = "tab:red" if x == winner else "tab:blue"
        ax.errorbar(
            [x],
            [row["iqm"]],
            yerr=[[row["iqm"] - low], [high - row["iqm"]]],
            fmt="o",
            color=color,
            capsize=6,
            zorder=3,
            label="IQM, 95% CI" if x == 0 else None,
        )
        ax.scatter(
            [x + 0.25],
            [row["search_score"]],
            marker="D",
            facecolors="none",
            edgecolors="black",
            zorder=3,
            label="search score" if x == 0 else None,
        )
    ax.set_xticks(
        range(len(recheck)),
        [f"trial {r['trial']}" + (" (best)" if i == winner else "") for i, r in enumerate(recheck)],
    )
    seeds = ", ".join(str(s) for s in recheck[0]["seeds"])
    ax.set(ylabel="score", title=f"re-check on fresh seeds {seeds}")
    ax.set_xlim(-0.6, len(recheck) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")


def _finite(value: Any, default: float) -> float:
    return float(value) if value is not None and math.isfinite(float(value)) else default


# --- the report: console and page ------------------------------------------------------------


@dataclass
class Report:
    """Everything the report shows."""

    study_name: str
    storage: str
    rows: list[TrialRow]
    params: list[str]  # the parameters' names (Optuna's), sorted
    overhead: str
    importances: Importances
    recheck: list[dict[str, Any]]
    best: str
    best_yaml: str
    plots: list[Plot]

    @property
    def headline(self) -> str:
        counts = {state: sum(row.state == state for row in self.rows) for state in STATE_ORDER}
        said = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        return f"study '{self.study_name}': {len(self.rows)} trials" + (
            f" ({said})" if said else ""
        )

    def header(self, short: bool = False) -> list[str]:
        """The trials table's column names; ``short``: the parameters' shortest unique tails."""
        params = short_names(self.params).values() if short else self.params
        return ["#", "state", "score", "train s", "overhead", *params, "error"]

    def cells(self, row: TrialRow) -> list[str]:
        """One trial's cells under ``header``."""
        params = (_value(row.params[name]) if name in row.params else "" for name in self.params)
        return [
            str(row.number),
            row.state,
            _format(row.score, ".2f"),
            _format(row.train_seconds, ".1f"),
            _format(row.overhead, ".1%"),
            *params,
            row.note,
        ]


def short_names(names: list[str]) -> dict[str, str]:
    """Each dotted name's shortest tail that no other name shares (``method.learning_rate`` ->
    ``learning_rate``; ``a.lr`` and ``b.lr`` stay whole)."""
    short = {}
    for name in names:
        parts = name.split(".")
        for keep in range(1, len(parts) + 1):
            tail = ".".join(parts[-keep:])
            if not any(other != name and f".{other}".endswith(f".{tail}") for other in names):
                break
        short[name] = tail
    return short


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _format(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def print_report(console: Any, report: Report) -> None:
    """The trials (the best first), the overhead, the importances and the winner."""
    print_trials(console, report)
    say = dict(highlight=False, markup=False)
    console.print(report.overhead, **say)
    console.print(f"parameter importances (PED-ANOVA, {report.importances.note}):", **say)
    for name, value in report.importances.values.items():
        console.print(f"  {value:6.1%}  {'#' * round(30 * value):30}  {name}", **say)
    console.print(report.best, **say)
    for plot in report.plots:
        if plot.note:
            console.print(f"{plot.title}: {plot.note}", **say)


def print_trials(console: Any, report: Report) -> None:
    """The trials table, its values whole; the errors in their column where the console is
    wide enough, else on lines below it."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rows = [report.cells(row) for row in report.rows[:CONSOLE_ROWS]]
    header = report.header(short=True)
    widths = [  # the values whole; the parameters' names may fold
        max([len(name) if i < 5 else 1, *(len(cells[i]) for cells in rows)])
        for i, name in enumerate(header)
    ]
    notes = any(cells[-1] for cells in rows)
    inline = not notes or sum(widths[:-1]) + 3 * len(widths) + 30 <= console.width
    if not inline:
        header, widths = header[:-1], widths[:-1]
    table = Table(title=report.headline, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, (name, width) in enumerate(zip(header, widths, strict=True)):
        last = inline and i == len(header) - 1
        table.add_column(name, min_width=30 if last else width, overflow="fold",
                         justify="right" if i in (2, 3, 4) else "left")  # fmt: skip
    for cells in rows:
        table.add_row(*(Text(cell) for cell in cells[: len(header)]))
    console.print(table)
    for cells in [] if inline else rows:
        if cells[-1]:
            console.print(f"trial {cells[0]}: {cells[-1]}", highlight=False, markup=False)
    if len(report.rows) > CONSOLE_ROWS:
        console.print(f"... and {len(report.rows) - CONSOLE_ROWS} more trials on the page")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.complete td:first-child { border-left: 3px solid #2a7; }
tr.pruned { color: #777; } tr.fail { color: #a33; }
.bar { background: #4a7ebb; height: 0.8em; display: inline-block; }
.note { color: #777; font-style: italic; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #eee; }
"""


def render_page(report: Report) -> str:
    """The report as one HTML page: no external asset, the plots next to it by relative path."""
    e = html.escape
    sections = [
        f"<h1>Tuning report: study '{e(report.study_name)}'</h1>",
        f"<p>{e(report.headline)}; storage <code>{e(report.storage)}</code></p>",
        f"<p><strong>{e(report.best)}</strong></p>",
        f"<p>{e(report.overhead)}</p>",
        "<h2>Trials, the best first</h2>",
        _trials_table(report),
        "<h2>Parameter importances</h2>",
        _importances_table(report.importances),
        "<h2>Re-check on fresh seeds</h2>",
        _recheck_table(report.recheck),
        "<h2>best.yaml</h2>",
        f"<pre>{e(report.best_yaml)}</pre>"
        if report.best_yaml
        else '<p class="note">no best.yaml yet (the re-check writes it)</p>',
        "<h2>Plots</h2>",
        *(_figure_html(plot) for plot in report.plots),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(report.study_name)}: tuning report</title>\n<style>{STYLE}</style>\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _table(header: Iterable[str], rows: Iterable[tuple[str, list[str]]], numeric: set[int]) -> str:
    """An HTML table; each row is (its class, its cells); the cells are text, escaped here,
    except those starting with '<' (made here)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = [f"<table>\n<tr>{head}</tr>"]
    for kind, cells in rows:
        tds = "".join(
            f"<td{' class=num' if i in numeric else ''}>"
            f"{cell if cell.startswith('<') else html.escape(cell)}</td>"
            for i, cell in enumerate(cells)
        )
        lines.append(f'<tr class="{kind}">{tds}</tr>')
    return "\n".join([*lines, "</table>"])


def _trials_table(report: Report) -> str:
    if not report.rows:
        return '<p class="note">no trial yet</p>'
    rows = ((row.state, report.cells(row)) for row in report.rows)
    return _table(report.header(), rows, numeric={0, 2, 3, 4})


def _importances_table(importances: Importances) -> str:
    note = f'<p class="note">PED-ANOVA, {html.escape(importances.note)}</p>'
    if not importances.values:
        return note
    top = max(importances.values.values()) or 1.0
    rows = (
        (
            "",
            [
                name,
                f"{value:.1%}",
                f'<span class="bar" style="width:{200 * value / top:.0f}px"></span>',
            ],
        )
        for name, value in importances.values.items()
    )
    return _table(["parameter", "importance", ""], rows, numeric={1}) + note


def _recheck_table(recheck: list[dict[str, Any]]) -> str:
    if not recheck:
        return '<p class="note">no recheck.json: no re-check ran yet</p>'
    rows = []
    for row in recheck:
        low, high = row["ci"]
        scores = ", ".join(f"{score:.2f}" for score in row["scores"])
        values = ", ".join(f"{path}={_value(v)}" for path, v in row["values"].items())
        rows.append(
            (
                "",
                [
                    str(row["trial"]),
                    f"{row['search_score']:.2f}",
                    f"{row['iqm']:.2f}",
                    f"[{low:.2f}, {high:.2f}]",
                    ", ".join(map(str, row["seeds"])),
                    scores,
                    values,
                ],
            )
        )
    header = ["trial", "search score", "IQM", "95% CI", "seeds", "scores", "values"]
    return _table(header, rows, numeric={0, 1, 2})


def _figure_html(plot: Plot) -> str:
    title = html.escape(plot.title)
    if plot.note:
        return f'<h3>{title}</h3>\n<p class="note">{html.escape(plot.note)}</p>'
    return (
        f'<figure><img src="{html.escape(plot.file)}" alt="{title}">'
        f"<figcaption>{title}</figcaption></figure>"
    )


# --- the entry point ---------------------------------------------------------------------------


def write_tune_report(folder: str | Path, storage: str | None = None, console: Any = None) -> Path:
    """Write the report of the tuning folder ``folder`` (see the module docstring) and return
    its page, ``<folder>/report/index.html``; with a rich ``console``, print its summary."""
    folder = Path(folder)
    study, url = open_study(folder, storage)
    out = folder / "report"
    out.mkdir(exist_ok=True)
    rows = trial_rows(study)
    importances = param_importances(study)
    (out / "importances.json").write_text(json.dumps(importances.to_json(), indent=2) + "\n")
    recheck = read_json(folder / "recheck.json", [])
    best, best_text = best_line(study, read_json(folder / "best.json", None))
    best_yaml = folder / "best.yaml"
    report = Report(
        study_name=study.study_name,
        storage=url,
        rows=rows,
        params=sorted({name for row in rows for name in row.params}),
        overhead=overhead_line(rows),
        importances=importances,
        recheck=recheck,
        best=best_text,
        best_yaml=best_yaml.read_text() if best_yaml.is_file() else "",
        plots=save_plots(study, folder, out, best, recheck),
    )
    if console is not None:
        print_report(console, report)
    page = out / "index.html"
    page.write_text(render_page(report))
    return page
