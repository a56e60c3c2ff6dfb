"""Turn a run folder into a learning-curve plot and a one-page summary (Markdown and HTML).

A report must work on any run folder, including one that is still training or that stopped early:
only ``manifest.json`` is required, and every other file (``metrics.csv``, ``validation.csv``,
``evaluation.json``, ``experiment.yaml``) adds its part when it is there. The Markdown and HTML
pages are rendered from the same list of sections so that they never disagree.

Plots are drawn on a bare Agg canvas rather than through ``pyplot``: this needs no display, and it
does not switch the matplotlib backend of a notebook or script that happens to call the report.
"""

from __future__ import annotations

import csv
import html
import json
import math
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import yaml
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from pydantic import ValidationError

from mentor.errors import CheckpointError, ConfigError, MentorError
from mentor.experiment import Experiment
from mentor.report import constraint, federation, options, robustness
from mentor.report.league import LEAGUE_FILE, plot_league, read_league
from mentor.report.league import rows as league_rows

REPORT_DIR = "report"
PLOT_NAME = "learning_curve.png"
EXPERIMENT_NAME = "experiment.yaml"
EXPERIMENT_LINK = f"../{EXPERIMENT_NAME}"  # from the report folder to the run folder
DEFAULT_STEP_UNIT = "env steps"  # runs written before manifests named their step unit
MAX_LOSS_PANELS = 4
RETURN_PANEL_HEIGHT = 3.5  # inches
LOSS_PANEL_HEIGHT = 1.6
LOG_SCALE_SPAN = 100.0
# Prefixes of a loss key measured on other data than the training batch -> legend label.
_LOSS_VARIANTS = {"": "training", "val_": "validation", "best_val_": "best validation"}

Row = dict[str, float | None]


def write_report(run_dir: str | Path, compare: str | Path | None = None) -> Path:
    """Write ``report/learning_curve.png``, ``report/report.md`` and ``report/report.html``;
    ``compare``: another run folder, whose robustness numbers stand beside this run's.

    Returns the report folder. Raises :class:`~mentor.errors.CheckpointError` when ``run_dir``
    has no readable ``manifest.json``, since then it is not a run folder at all.
    """
    run = Path(run_dir)
    manifest = _read_manifest(run)
    metrics = _read_table(run / "metrics.csv")
    validation = _read_table(run / "validation.csv")
    evaluation, evaluation_note = _read_optional_json(run / "evaluation.json")
    unit = _step_unit(manifest)

    out = run / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    _plot_learning_curve(out / PLOT_NAME, manifest, metrics, validation)

    title = f"Run report: {_text(manifest.get('name'))}"
    sections = [
        _run_section(manifest, unit),
        _Section("Learning curve", image=PLOT_NAME),
        _curriculum_section(manifest, metrics, unit),
        _continual_section(manifest, out),
        _league_section(run, out),
        _robustness_section(run, out, None if compare is None else Path(compare)),
        _constraint_section(run, metrics, evaluation, out),
        _explain_section(run, out),
        _options_section(run, out),
        _federation_section(run, out),
        _validation_section(validation, unit),
        _evaluation_section(evaluation, evaluation_note),
        _hyperparameters_section(run, manifest),
        _versions_section(manifest),
    ]
    sections = [s for s in sections if not s.is_empty()]
    (out / "report.md").write_text(_to_markdown(title, sections), encoding="utf-8")
    (out / "report.html").write_text(_to_html(title, sections), encoding="utf-8")
    return out


# --- Reading the run folder -----------------------------------------------------------------


def _read_manifest(run: Path) -> dict[str, Any]:
    path = run / "manifest.json"
    if not path.is_file():
        raise CheckpointError(f"{run} is not a run folder: it has no manifest.json")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return manifest


def _read_optional_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in ``path``, or None and a note saying why it could not be used.

    A missing file is normal (no final evaluation yet) and gets no note; a broken one, say half
    written by a run that is still going, is mentioned in the report rather than failing it.
    """
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} could not be read ({exc})."
    if not isinstance(data, dict):
        return None, f"{path.name} does not hold a JSON object."
    return data, None


def _read_table(path: Path) -> list[Row]:
    """Rows of a wide CSV as numbers, None for empty or non-numeric cells; [] if there is none.

    Runs log different metrics at different steps, so most cells of ``metrics.csv`` are empty;
    a last line cut short by a run that is still writing simply has its missing cells as None.
    """
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [
            {key: _number(cell) for key, cell in row.items() if key} for row in csv.DictReader(f)
        ]


def _number(cell: str | None) -> float | None:
    if cell is None or not cell.strip():
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _series(rows: list[Row], *keys: str) -> tuple[np.ndarray, ...]:
    """Step and the given columns, over the rows where all of them were logged."""
    columns = ("step", *keys)
    kept = [row for row in rows if all(row.get(k) is not None for k in columns)]
    return tuple(np.array([row[k] for row in kept], dtype=np.float64) for k in columns)


def _columns(rows: list[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


# --- The plot ---------------------------------------------------------------------------------


def _step_unit(manifest: dict[str, Any]) -> str:
    """What the run's steps count: ``env steps`` for RL and DAgger, ``gradient steps`` for BC."""
    unit = manifest.get("step_unit")
    return unit if isinstance(unit, str) and unit.strip() else DEFAULT_STEP_UNIT


def learning_curve(run_dir: str | Path) -> Figure:
    """The figure ``write_report`` saves as ``learning_curve.png``, for a notebook to show or
    a test to inspect; it writes nothing."""
    run = Path(run_dir)
    return _learning_curve_figure(
        _read_manifest(run), _read_table(run / "metrics.csv"), _read_table(run / "validation.csv")
    )


def _plot_learning_curve(
    path: Path, manifest: dict[str, Any], metrics: list[Row], validation: list[Row]
) -> None:
    _learning_curve_figure(manifest, metrics, validation).savefig(path, dpi=110)


def _learning_curve_figure(
    manifest: dict[str, Any], metrics: list[Row], validation: list[Row]
) -> Figure:
    """Return against steps on top; below it one panel per training loss term, when logged.

    Each loss term gets its own axis: PPO's value loss is often a thousand times its policy
    loss, and on a shared axis every other term would be a flat line (issue 10).
    """
    # A term that is zero throughout (PPO's entropy term at entropy_coef 0) gets no panel.
    groups = [
        (name, keys)
        for name, keys in _loss_groups(_columns(metrics))
        if any(np.any(_series(metrics, key)[1] != 0) for key in keys)
    ]
    curriculum = [k for k in _columns(metrics) if k.startswith("curriculum/share_")]
    panels = len(groups) + bool(curriculum)
    figure = Figure(
        figsize=(9.0, RETURN_PANEL_HEIGHT + LOSS_PANEL_HEIGHT * panels), layout="constrained"
    )
    FigureCanvasAgg(figure)
    ratios = [RETURN_PANEL_HEIGHT] + [LOSS_PANEL_HEIGHT] * panels
    axes = figure.subplots(len(ratios), 1, sharex=True, squeeze=False, height_ratios=ratios)[:, 0]

    tasks = (manifest.get("continual") or {}).get("tasks")  # a continual run's sequence
    on = f"{len(tasks)} tasks in a row" if tasks else _text(manifest.get("env_id"))
    figure.suptitle(f"{_text(manifest.get('name'))}: {_text(manifest.get('method'))} on {on}")
    _plot_returns(axes[0], manifest, metrics, validation)
    if curriculum:
        _plot_curriculum(axes[1], metrics, curriculum)
    for ax, (name, keys) in zip(axes[1 + bool(curriculum) :], groups, strict=True):
        _plot_loss(ax, metrics, name, keys)
    for event in manifest.get("curriculum_events") or []:  # a staged curriculum's moves
        for ax in axes:
            ax.axvline(event["step"], color="purple", linestyle=":", linewidth=1)
        where = ("data", "axes fraction")
        label = tasks[event["stage"]] if tasks else f"stage {event['stage']}"
        axes[0].annotate(label, (event["step"], 1.0), xycoords=where,
                         fontsize="small", color="purple", va="bottom")  # fmt: skip
    axes[-1].set_xlabel(_step_unit(manifest))
    axes[-1].xaxis.set_major_formatter(EngFormatter(sep=""))  # 20k, 1.5M rather than 1500000
    return figure


def _legend_outside(ax: Axes) -> None:
    """A legend to the right of the axes, where it can hide no data point."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize="small")


def _plot_returns(
    ax: Axes, manifest: dict[str, Any], metrics: list[Row], validation: list[Row]
) -> None:
    drawn = [
        _plot_training_return(ax, metrics),
        _plot_validation_return(ax, validation),
        _plot_agent_returns(ax, metrics, validation),
        _plot_target(ax, manifest.get("target_return")),
    ]
    agents = _agent_columns(_columns(metrics))
    title = "Episode return: the team's (mean over agents) and each agent's"
    ax.set_title(title if agents else "Episode return")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    if any(drawn):
        _legend_outside(ax)
    else:
        ax.text(0.5, 0.5, "no returns logged yet", ha="center", va="center", transform=ax.transAxes)


def _plot_training_return(ax: Axes, metrics: list[Row]) -> bool:
    """The mean return of the episodes that ended in each rollout, held until the next one ends.

    A row has a return only when an episode ended since the previous row; with long episodes
    most rows have none, so the value is carried as a step line rather than left out.
    """
    step, mean, std = _carried(metrics, "rollout/ep_return_mean", "rollout/ep_return_std")
    if not step.size:
        step, mean = _carried(metrics, "rollout/ep_return_mean")
        std = None
    if not step.size:
        return False
    (line,) = ax.plot(step, mean, drawstyle="steps-post", label="training return (mean)")
    if std is not None:
        ax.fill_between(
            step,
            mean - std,
            mean + std,
            step="post",
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
            label="training return ± std",
        )
    return True


def _agent_columns(columns: list[str]) -> list[str]:
    """A multi-agent run's per-agent return columns (``rollout/return_<agent>_mean``)."""
    return [c for c in columns if c.startswith("rollout/return_") and c.endswith("_mean")]


def _plot_agent_returns(ax: Axes, metrics: list[Row], validation: list[Row]) -> bool:
    """Each agent's own return beside the team's: thin training lines, validation points."""
    drawn = False
    for column in _agent_columns(_columns(metrics)):
        name = column.removeprefix("rollout/return_").removesuffix("_mean")
        step, mean = _carried(metrics, column)
        if not step.size:
            continue
        label = f"{name} (training)"
        (line,) = ax.plot(step, mean, drawstyle="steps-post", linewidth=0.8, alpha=0.7, label=label)
        v_step, v_mean = _series(validation, f"return_{name}_mean")
        if v_step.size:
            label = f"{name} (validation)"
            ax.plot(v_step, v_mean, "o", markersize=3, color=line.get_color(), label=label)
        drawn = True
    return drawn


def _plot_validation_return(ax: Axes, validation: list[Row]) -> bool:
    """Each validation's mean return, with its confidence interval as an error bar: a band
    would be invisible around a single validation."""
    step, mean = _series(validation, "return_mean")
    if not step.size:
        return False
    (line,) = ax.plot(step, mean, marker="o", markersize=4, label="validation return (mean)")
    stage_step, stage_mean = _series(validation, "stage_return_mean")
    if stage_step.size:  # a staged curriculum validates on its current stage too
        ax.plot(stage_step, stage_mean, marker="s", markersize=3, linestyle="--",
                label="validation on the current stage")  # fmt: skip
    ci_step, ci_mean, low, high = _series(
        validation, "return_mean", "return_ci_low", "return_ci_high"
    )
    if ci_step.size:
        below, above = np.maximum(ci_mean - low, 0), np.maximum(high - ci_mean, 0)
        ax.errorbar(
            ci_step,
            ci_mean,
            yerr=np.stack([below, above]),
            fmt="none",
            ecolor=line.get_color(),
            capsize=3,
            label="validation CI",
        )
    return True


def _plot_curriculum(ax: Axes, metrics: list[Row], shares: list[str]) -> None:
    """Which tasks the episodes played, as shares of each logging window, over the run."""
    for key in shares:
        step, share = _series(metrics, key)
        ax.plot(step, share, label=key.removeprefix("curriculum/share_"))
    ax.set_title("Curriculum: the tasks the episodes played (share of each window)")
    ax.set_ylabel("share")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    _legend_outside(ax)


def _plot_target(ax: Axes, target: Any) -> bool:
    if not _is_number(target):
        return False
    ax.axhline(target, color="gray", linestyle="--", linewidth=1, label="target return")
    return True


def _loss_groups(columns: list[str]) -> list[tuple[str, list[str]]]:
    """The loss panels: each ``train/`` loss term with its validation variants.

    ``train/val_loss`` and ``train/best_val_loss`` (BC, DAgger) are the same term measured on
    held-out data, so they share the panel of ``train/loss``. Panels keep the order in which
    the method logs its terms; at most MAX_LOSS_PANELS of them.
    """
    groups: dict[str, list[str]] = {}
    for key in columns:
        if key.startswith("train/") and "loss" in key:
            groups.setdefault(_loss_term(key), []).append(key)
    return list(groups.items())[:MAX_LOSS_PANELS]


def _variant(key: str) -> str:
    """The prefix naming the data a loss key was measured on ("" for the training batch)."""
    name = key.removeprefix("train/")
    return next((p for p in _LOSS_VARIANTS if p and name.startswith(p)), "")


def _loss_term(key: str) -> str:
    """``train/val_loss`` -> ``train/loss``: the term a loss key measures."""
    return "train/" + key.removeprefix("train/").removeprefix(_variant(key))


def _plot_loss(ax: Axes, metrics: list[Row], name: str, keys: list[str]) -> None:
    """One loss term on its own linear axis, or a log axis when it is positive and spans more
    than LOG_SCALE_SPAN (a value loss falling from thousands to tenths)."""
    values = []
    for key in sorted(keys, key=lambda k: list(_LOSS_VARIANTS).index(_variant(k))):
        step, value = _series(metrics, key)
        if step.size:
            ax.plot(step, value, label=_LOSS_VARIANTS[_variant(key)])
            values.append(value)
    logged = np.concatenate(values) if values else np.empty(0)
    if logged.size and logged.min() > 0 and logged.max() > LOG_SCALE_SPAN * logged.min():
        ax.set_yscale("log")
    ax.set_title(name, loc="left", fontsize="medium")
    ax.grid(alpha=0.3)
    if len(values) > 1:
        _legend_outside(ax)


def _carried(rows: list[Row], *keys: str) -> tuple[np.ndarray, ...]:
    """Step and the given columns over every row from the first where all were logged, each
    row holding the values of the last row where they were."""
    steps: list[float] = []
    held: list[list[float]] = []
    last: list[float] | None = None
    for row in rows:
        if row.get("step") is None:
            continue
        if all(row.get(k) is not None for k in keys):
            last = [cast(float, row[k]) for k in keys]
        if last is not None:
            steps.append(cast(float, row["step"]))
            held.append(last)
    table = np.array(held, dtype=np.float64).reshape(-1, len(keys))
    return (np.array(steps, dtype=np.float64), *table.T)


# --- The summary ------------------------------------------------------------------------------


_ABSENT = object()  # a setting the defaults do not have


@dataclass
class _Link:
    """A paragraph that ends in a link: ``before`` then ``text`` pointing at ``href``."""

    before: str
    text: str
    href: str


@dataclass
class _Section:
    """One heading of the report: a two-column table, notes, links, and/or an image."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    links: list[_Link] = field(default_factory=list)
    image: str | None = None

    def is_empty(self) -> bool:
        return not (self.rows or self.notes or self.links or self.image)


def _run_section(manifest: dict[str, Any], unit: str) -> _Section:
    fields = [
        ("Name", _text(manifest.get("name"))),
        ("Method", _text(manifest.get("method"))),
        ("Environment", _text(manifest.get("env_id"))),
        ("Seed", _text(manifest.get("seed"), numeric=False)),
        ("Stop reason", _text(manifest.get("stop_reason"), missing="— (not stopped)")),
        ("Total steps", _steps_text(manifest.get("total_steps"), unit)),
        ("Training time", _duration(manifest.get("train_seconds"))),
        ("Started", _text(manifest.get("start"))),
        ("Stopped", _text(manifest.get("stop"))),
        ("Target return", _text(manifest.get("target_return"))),
        ("Git commit", _text(manifest.get("git_commit"))),
        ("Host", _text(manifest.get("host"))),
    ]
    return _Section("Run", rows=fields)


def _curriculum_section(manifest: dict[str, Any], metrics: list[Row], unit: str) -> _Section:
    """A curriculum's stage moves, and each task's share and mean return over the run."""
    rows = [(f"{event['step']:,} {unit}", _text(event["text"]))
            for event in manifest.get("curriculum_events") or []]  # fmt: skip
    counts: dict[str, float] = {}
    for key in [k for k in _columns(metrics) if k.startswith("curriculum/share_")]:
        _, share, episodes = _series(metrics, key, "rollout/episodes")
        counts[key.removeprefix("curriculum/share_")] = float((share * episodes).sum())
    total = sum(counts.values()) or 1.0
    for name, count in counts.items():
        _, returns = _series(metrics, f"curriculum/return_{name}")
        mean = f", mean return {returns.mean():.3g}" if returns.size else ""
        rows.append((f"task {name}", f"{count / total:.0%} of the episodes{mean}"))
    return _Section("Curriculum", rows=rows)


CONTINUAL_PLOT = "continual.png"


def _continual_section(manifest: dict[str, Any], out: Path) -> _Section:
    """A continual run's performance matrix as a heatmap, and its measures."""
    data = manifest.get("continual") or {}
    matrix = data.get("matrix")
    if not matrix:
        return _Section("Continual learning")
    tasks = data["tasks"]
    r = np.asarray(matrix, dtype=float)
    figure = Figure(figsize=(1.2 + 1.1 * len(tasks), 1.0 + 0.8 * len(r)))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    image = ax.imshow(r, cmap="viridis", vmin=0.0, vmax=max(1.0, float(r.max())), aspect="auto")
    for (i, j), value in np.ndenumerate(r):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center",
                color="white" if value < 0.5 else "black", fontsize=9)  # fmt: skip
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(r)), [f"after {tasks[i]}" for i in range(len(r))], fontsize=8)
    ax.set_title("Performance on each task (columns) after each task (rows)", fontsize=9)
    figure.colorbar(image, ax=ax, fraction=0.05)
    figure.tight_layout()
    figure.savefig(out / CONTINUAL_PLOT, dpi=110)
    rows = [("Average performance (end)", f"{data.get('average_performance', float('nan')):.3f}")]
    if data.get("forgetting_mean") is not None:
        each = ", ".join(f"{t} {f:+.3f}" for t, f in zip(tasks, data["forgetting"], strict=False))
        rows.append(("Forgetting (mean)", f"{data['forgetting_mean']:.3f} ({each})"))
    aucs = [a for a in data.get("auc") or [] if a is not None]
    if aucs:
        rows.append(("Area under each task's curve", ", ".join(f"{a:.3f}" for a in aucs)))
    notes = ["Performance: success rate where the env defines a success, else the return over "
             "the most the env pays (continual.json has the raw returns)."]  # fmt: skip
    return _Section("Continual learning", rows=rows, notes=notes, image=CONTINUAL_PLOT)


LEAGUE_PLOT = "league.png"


def _league_section(run: Path, out: Path) -> _Section:
    """A self-play run's pool and ratings (``league.json``): the learner's over training and
    every player's at the end, plotted; the best rated players listed."""
    if not (run / LEAGUE_FILE).is_file():
        return _Section("Self-play league")
    try:
        league = read_league(run)
    except MentorError as exc:  # no rated games yet: said, not plotted
        return _Section("Self-play league", notes=[str(exc)])
    plot_league(league, out / LEAGUE_PLOT)
    rows = [(f"{row[0]} ({row[1]})", f"ordinal {row[2]}, mu {row[3]}, sigma {row[4]}, "
             f"Elo {row[5]}, {row[6]} games (W/D/L {row[7]})")
            for row in league_rows(league)[:12]]  # fmt: skip
    joined = sum("joined" in event for event in league["events"])
    notes = [f"{len(league['members'])} players in the pool at the end; {joined} snapshots "
             "joined over training. Ratings: OpenSkill (Plackett-Luce; ordinal = "
             "mu - 3 sigma) and Elo (K 16), from every training game; `mentor league` prints "
             "all."]  # fmt: skip
    if "league" in league:  # its exploiters
        for e in league["league"]["exploiters"]:
            notes.append(f"{e['name']}, {e['role']}: joined the pool {e['snapshots']} times, "
                         f"started over {e['restarts']} times")  # fmt: skip
    return _Section("Self-play league", rows=rows, notes=notes, image=LEAGUE_PLOT)


ROBUSTNESS_PLOT = "robustness.png"


def _robustness_section(run: Path, out: Path, compare: Path | None) -> _Section:
    """A RARL run's returns with and without its adversary, and every run's returns under the
    perturbations of ``mentor eval --perturb``, beside ``compare``'s (``report/robustness.py``)."""
    if compare is not None and not (compare / "manifest.json").is_file():
        raise ConfigError(f"--compare '{compare}' is not a run folder (no manifest.json)")
    runs = [_robustness_of(folder) for folder in ([run, compare] if compare else [run])]
    if all(r.is_empty() for r in runs):
        return _Section("Robustness")
    robustness.plot(runs, out / ROBUSTNESS_PLOT)
    notes = [
        "Returns of `mentor eval` (deterministic) on the plain env and under each `--perturb`, "
        "with 95% bootstrap intervals; the gap is the perturbed mean minus the clean one (a "
        "plain `mentor eval`'s, else the final evaluation's), its interval from both "
        "evaluations' episodes, each resampled on its own. A RARL run's training episodes are "
        "played against its adversary, its validation alone."
    ]
    return _Section("Robustness", rows=robustness.rows(runs), notes=notes, image=ROBUSTNESS_PLOT)


EXPLAIN_PLOTS = ("importance.png", "saliency.png", "timeline.png")


def _explain_section(run: Path, out: Path) -> _Section:
    """``mentor explain``'s attributions (``mentor/explain.py``): the features that move each
    target most, completeness, and the plots (copied beside the report)."""
    summary, _ = _read_optional_json(run / "explain" / "explain.json")
    if summary is None:
        return _Section("Explanations")
    played = f"{summary['decisions']:,} of {summary['episodes']} episodes (seed {summary['seed']})"
    path = f"{summary['baseline']}, {summary['steps']} steps on the path"
    rows = [("Decisions", played), ("Baseline", path)]
    for label, target in summary["targets"].items():
        top = sorted(target["mean_abs"].items(), key=lambda kv: -kv[1])[:3]
        shown = ", ".join(f"{name} {value:.3g}" for name, value in top)
        rows.append((f"{label}: mean abs attribution", shown))
        rows.append((f"{label}: completeness error", f"{target['worst_completeness_error']:.2%} "
                     f"at worst, {target['median_completeness_error']:.2%} median"))  # fmt: skip
    images = [name for name in EXPLAIN_PLOTS if (run / "explain" / name).is_file()]
    for name in images:
        shutil.copyfile(run / "explain" / name, out / f"explain_{name}")
    notes = ["Integrated gradients (captum) from the baseline to each observation: the share of "
             "the chosen action's score (Discrete), each action dimension (Box) or the value that "
             "each feature accounts for. `mentor explain` wrote them; the timeline is "
             "`explain_timeline.png` beside this report."]  # fmt: skip
    return _Section("Explanations", rows=rows, notes=notes,
                    image=f"explain_{images[0]}" if images else None)  # fmt: skip


OPTIONS_PLOT = "options.png"


def _options_section(run: Path, out: Path) -> _Section:
    """An option-critic run's option usage over the states, on the grid (report/options.py)."""
    data = options.read(run)
    if data is None:
        return _Section("Options")
    options.plot(data, out / OPTIONS_PLOT)
    notes = ["Counted over training: the option in force at each step, by the state it acted "
             "in (one-hot observations); the greedy option and the terminations are the final "
             "networks'. `options.json` in the run folder has the numbers."]  # fmt: skip
    return _Section("Options", rows=options.rows(data), notes=notes, image=OPTIONS_PLOT)


FEDERATION_PLOT = "federation.png"


def _federation_section(run: Path, out: Path) -> _Section:
    """A FedAvg run's per-client matrix (report/federation.py)."""
    data = federation.read(run)
    if data is None:
        return _Section("Federated clients")
    federation.plot(data, out / FEDERATION_PLOT)
    notes = ["At the end of training each client played its own variant with the server's "
             "model and, unless secure aggregation hid them, with each client's last local "
             "model (deterministic actions), sending back only the mean return. "
             "`federation.json` in the run folder has the numbers."]  # fmt: skip
    return _Section("Federated clients", rows=federation.rows(data), notes=notes,
                    image=FEDERATION_PLOT)  # fmt: skip


CONSTRAINT_PLOT = "constraint.png"


def _constraint_section(
    run: Path, metrics: list[Row], evaluation: dict[str, Any] | None, out: Path
) -> _Section:
    """A constrained run's limit, episode cost, violations and multiplier (report/constraint.py)."""
    if "constraint/multiplier" not in _columns(metrics):
        return _Section("Constraint")
    steps, limits, multipliers = _series(metrics, "constraint/limit", "constraint/multiplier")
    cost_steps, costs, violations = _series(
        metrics, "constraint/episode_cost", "constraint/violations"
    )
    limit, target = float(limits[-1]), None
    if "constraint/target" in _columns(metrics):  # constraint.margin
        target = float(_series(metrics, "constraint/target")[1][-1])
    constraint.plot((cost_steps, costs), (steps, multipliers), limit, out / CONSTRAINT_PLOT, target)
    last = costs[-max(1, len(costs) // 10) :]  # the last tenth of the updates
    rows = [
        ("Cost limit (per episode)", f"{limit:g}"),
        ("Episode cost, last tenth of training", f"{last.mean():.3g}" if len(last) else "—"),
        ("Updates whose episodes broke the limit, on average",
         f"{violations.mean():.0%} of their episodes" if len(violations) else "—"),
        ("Multiplier at the end", f"{multipliers[-1]:.3g}"),
    ]  # fmt: skip
    if target is not None:
        rows.insert(1, ("Training target (the limit less its margin)", f"{target:g}"))
    key = _constraint_key(run)
    cost = (evaluation or {}).get("info", {}).get(key)
    if isinstance(cost, (int, float)):
        rows.append(("Final evaluation's episode cost", f"{cost:.3g}"))
    return _Section("Constraint", rows=rows, image=CONSTRAINT_PLOT)


def _constraint_key(run: Path) -> str:
    """The info key of the run's cost (``constraint.cost`` in experiment.yaml; else ``cost``)."""
    try:
        experiment = yaml.safe_load((run / EXPERIMENT_NAME).read_text(encoding="utf-8"))
        return str(experiment["constraint"]["cost"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        return "cost"


def _robustness_of(run: Path) -> robustness.Robustness:
    """A run's returns by condition (its plain ``mentor eval``'s clean return, else its final
    evaluation's) and, for a RARL run, its returns under and without the adversary."""
    out = robustness.Robustness(run.name, robustness.perturbed_returns(run))
    evaluation, _ = _read_optional_json(run / "evaluation.json")
    if evaluation and isinstance(evaluation.get("return_mean"), (int, float)):
        out.returns.setdefault(robustness.CLEAN, robustness.Condition.of(evaluation))
    if _read_manifest(run).get("method") == "rarl":
        under = _series(_read_table(run / "metrics.csv"), "rollout/ep_return_mean")
        without = _series(_read_table(run / "validation.csv"), "return_mean")
        out.under, out.without = list(zip(*under, strict=True)), list(zip(*without, strict=True))
    return out


def _validation_section(validation: list[Row], unit: str) -> _Section:
    evaluated = [row for row in validation if row.get("return_mean") is not None]
    if not evaluated:
        return _Section("Validation")
    final = evaluated[-1]
    best = max(evaluated, key=lambda row: cast(float, row["return_mean"]))
    rows = [
        ("Evaluations", str(len(evaluated))),
        ("Final return", _validation_result(final, unit)),
        ("Best return", _validation_result(best, unit)),
    ]
    if final.get("success_rate") is not None:
        rows.append(("Final success rate", _percent(final["success_rate"])))
    for column in _info_columns(validation):
        key = column.removesuffix("_mean")
        rows.append((f"Final mean {key}", _number_text(final.get(column))))
    notes = ["Intervals are bootstrap confidence intervals of the mean return."]
    return _Section("Validation", rows=rows, notes=notes)


def _info_columns(validation: list[Row]) -> list[str]:
    """The columns of validation.csv that hold the mean of a declared info key."""
    own = {"return_mean", "length_mean"}
    return [c for c in _columns(validation) if c.endswith("_mean") and c not in own]


def _validation_result(row: Row, unit: str) -> str:
    text = _number_text(row.get("return_mean"))
    if row.get("return_ci_low") is not None and row.get("return_ci_high") is not None:
        text += f" [{_number_text(row['return_ci_low'])}, {_number_text(row['return_ci_high'])}]"
    details = [_steps_text(row.get("step"), unit)]
    if row.get("episodes") is not None:
        details.append(f"{_number_text(row['episodes'])} episodes")
    return f"{text} ({', '.join(details)})"


def _evaluation_section(evaluation: dict[str, Any] | None, note: str | None) -> _Section:
    section = _Section("Final evaluation", notes=[note] if note else [])
    if evaluation is None:
        return section
    get = evaluation.get
    confidence = get("confidence")
    level = f"{_number_text(100 * confidence)}% CI" if _is_number(confidence) else "CI"
    candidates = [
        ("Environment", get("env_id"), _text),
        ("Episodes", get("episodes"), _text),
        ("Mean return", get("return_mean"), _number_text),
        ("Std of return", get("return_std"), _number_text),
        (f"Mean return, {level}", _interval(get("return_ci_low"), get("return_ci_high")), str),
        ("IQM return", get("return_iqm"), _number_text),
        (
            f"IQM return, {level}",
            _interval(get("return_iqm_ci_low"), get("return_iqm_ci_high")),
            str,
        ),
        ("Min / max return", _pair(get("return_min"), get("return_max")), str),
        ("Mean episode length", get("length_mean"), _number_text),
        ("Success threshold", get("success_threshold"), _number_text),
        (_success_label(get("success_from")), get("success_rate"), _percent),
    ]
    info = get("info")
    for key, mean in info.items() if isinstance(info, dict) else []:
        candidates.append((f"Mean {key}", mean, _number_text))
    agents = get("agents")
    for name, own in agents.items() if isinstance(agents, dict) else []:
        interval = _interval(own.get("return_ci_low"), own.get("return_ci_high"))
        candidates.append((f"{name}: mean return", own.get("return_mean"), _number_text))
        candidates.append((f"{name}: mean return, {level}", interval, str))
        candidates.append((f"{name}: IQM return", own.get("return_iqm"), _number_text))
    section.rows = [(label, fmt(value)) for label, value, fmt in candidates if value is not None]
    return section


def _success_label(source: Any) -> str:
    return "Success rate (the env's is_success)" if source == "is_success" else "Success rate"


def _hyperparameters_section(run: Path, manifest: dict[str, Any]) -> _Section:
    """Every setting of the method, then the other settings that differ from the defaults.

    ``experiment.yaml`` holds the resolved experiment (every default filled in), so listing
    all of it would bury the few choices that made the run; the method's settings are listed
    in full because they are what a reader compares between runs.
    """
    path = run / EXPERIMENT_NAME
    section = _Section("Hyperparameters")
    if not path.is_file():
        return section
    section.links = [_Link("The whole resolved experiment: ", EXPERIMENT_NAME, EXPERIMENT_LINK)]
    try:
        experiment = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        section.notes = [f"{EXPERIMENT_NAME} could not be read ({exc})."]
        return section
    if not isinstance(experiment, dict):
        section.notes = [f"{EXPERIMENT_NAME} does not hold a mapping of sections."]
        return section

    method = experiment.get("method")
    method = method if isinstance(method, dict) else {}
    name = method.get("name", manifest.get("method"))
    defaults = _experiment_defaults(name)
    rows = [
        (key, _setting_text(value, default))
        for key, value, default in _settings(method, (defaults or {}).get("method", {}), "method")
    ]
    if defaults is None:
        section.notes = [f"mentor has no defaults for method {_text(name)} to compare with."]
    else:
        rows += [
            (key, _setting_text(value, default))
            for top, part in experiment.items()
            if top != "method"
            for key, value, default in _settings(part, defaults.get(top, _ABSENT), str(top))
            if value != default
        ]
        section.notes = [
            f"All settings of the method, then the other settings that differ from mentor's "
            f"defaults for {_text(name)}; a changed setting shows its default after it."
        ]
    section.rows = rows
    return section


def _experiment_defaults(method: Any) -> dict[str, Any] | None:
    """The experiment a run of ``method`` starts from with no file, preset or override."""
    try:
        return Experiment.model_validate({"method": {"name": method}}).model_dump(mode="json")
    except (ValidationError, TypeError):
        return None


def _settings(value: Any, default: Any, key: str) -> Iterator[tuple[str, Any, Any]]:
    """(dotted key, value, default) for each setting under ``key``. A mapping is opened when
    its default is a mapping too (a section); else it is one value (a schedule given where the
    default is a number)."""
    if isinstance(value, dict) and value and isinstance(default, dict):
        for name, item in value.items():
            yield from _settings(item, default.get(name, _ABSENT), f"{key}.{name}")
    else:
        yield key, value, default


def _setting_text(value: Any, default: Any) -> str:
    text = _yaml_text(value)
    if default is _ABSENT or value == default:
        return text
    return f"{text} (default: {_yaml_text(default)})"


def _yaml_text(value: Any) -> str:
    """A setting as it is written in experiment.yaml, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _versions_section(manifest: dict[str, Any]) -> _Section:
    versions = manifest.get("versions")
    if not isinstance(versions, dict):
        return _Section("Versions")
    return _Section("Versions", rows=[(str(k), _text(v)) for k, v in sorted(versions.items())])


# --- Formatting -------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any, missing: str = "—", numeric: bool = True) -> str:
    """A manifest value for display; ``numeric=False`` keeps ids such as seeds unformatted."""
    if value is None or value == "":
        return missing
    if numeric and _is_number(value):
        return _number_text(value)
    return str(value)


def _number_text(value: Any) -> str:
    """Integers with thousands separators, other numbers to four significant digits."""
    if not _is_number(value):
        return "—" if value is None else str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def _steps_text(value: Any, unit: str) -> str:
    return f"{_number_text(value)} {unit}" if _is_number(value) else _text(value)


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}%" if _is_number(value) else _text(value)


def _interval(low: Any, high: Any) -> str | None:
    if low is None or high is None:
        return None
    return f"[{_number_text(low)}, {_number_text(high)}]"


def _pair(first: Any, second: Any) -> str | None:
    if first is None or second is None:
        return None
    return f"{_number_text(first)} / {_number_text(second)}"


def _duration(seconds: Any) -> str:
    if not _is_number(seconds):
        return _text(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _to_markdown(title: str, sections: Iterable[_Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.rows:
            lines += ["| | |", "|---|---|"]
            lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in section.rows]
            lines.append("")
        for note in section.notes:
            lines += [note, ""]
        for link in section.links:
            lines += [f"{link.before}[{link.text}]({link.href})", ""]
        if section.image:
            lines += [f"![{section.title}]({section.image})", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; }
td { border-bottom: 1px solid #eee; padding: .25rem 1rem .25rem 0; vertical-align: top; }
td:first-child { color: #555; white-space: nowrap; }
img { max-width: 100%; }
""".strip()


def _to_html(title: str, sections: Iterable[_Section]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{e(section.title)}</h2>")
        if section.rows:
            parts.append("<table>")
            parts += [f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in section.rows]
            parts.append("</table>")
        parts += [f"<p>{e(note)}</p>" for note in section.notes]
        parts += [
            f'<p>{e(link.before)}<a href="{e(link.href)}">{e(link.text)}</a></p>'
            for link in section.links
        ]
        if section.image:
            parts.append(f'<img src="{e(section.image)}" alt="{e(section.title)}">')
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
