"""Population-based training (Jaderberg et al. 2017, arXiv:1711.09846): ``mentor tune --pbt``.

A population of runs trains side by side (one after another here, on one machine), each with
values drawn from the ``tune:`` space and a seed of its own. Every ``pbt.interval_steps`` env
steps each member stops at a checkpoint and is scored by its last validation's mean return;
then

    exploit   each member in the bottom ``pbt.quantile`` takes over a member of the top one,
              drawn at random: its whole run folder (weights, optimizer state, normalizers, RNGs,
              env state: mentor's exact checkpoints), and its values
    explore   the values it took are perturbed: each of the *mutable* parameters (the floats of
              ``method.`` and ``exploration.``: learning rate, clip range, entropy, ...) is
              multiplied by one of ``pbt.perturb`` (default 0.8 or 1.2), or with probability
              ``pbt.resample_probability`` drawn afresh from its range; clipped to the range

and every member resumes (``mentor.resume`` with the values as overrides) for the next interval.
The other parameters of the space (architecture, integers, choices, env settings) are drawn once
per member and travel with the weights: a network's shape cannot change mid-run. Members never
stop at a target (they are compared at equal steps). Everything is deterministic given the seeds:
the draws come from ``tune.sampler_seed``.

``<folder>/pbt/lineage.json`` records every member at every interval (its score, its values,
where it was copied from), ``lineage.png`` plots the scores and the mutable values over steps
with each copy drawn as a jump, and ``best.json`` names the member that ends best, whose final
checkpoint is the trained agent (``mentor eval <folder>/pbt/member-N``). Running again goes on
from the last finished interval.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentor.errors import ConfigError
from mentor.experiment import Experiment
from mentor.tune.space import Param, TuneConfig, override, trial_experiment

MUTABLE_KINDS = ("log_uniform", "uniform")
MUTABLE_SECTIONS = ("method.", "exploration.")


@dataclass
class Member:
    index: int
    seed: int
    values: dict[str, Any]
    parent: int | None = None  # the member it was copied from at the last interval


def mutable(space: dict[str, Param]) -> list[str]:
    """The parameters PBT perturbs: floats of the method and exploration sections."""
    return [
        path
        for path, param in space.items()
        if param.kind in MUTABLE_KINDS and path.startswith(MUTABLE_SECTIONS) and not param.when
    ]


def sample(param: Param, rng: random.Random) -> Any:
    """A value of ``param`` drawn with ``rng`` (log-uniform on a log scale)."""
    kind = param.kind
    if kind == "log_uniform":
        low, high = param.log_uniform  # type: ignore[misc]
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if kind == "uniform":
        low, high = param.uniform  # type: ignore[misc]
        return rng.uniform(low, high)
    if kind == "int":
        low, high = param.int  # type: ignore[misc]
        return rng.randint(low, high)
    if kind == "choice":
        return rng.choice(param.choice)  # type: ignore[arg-type]
    low, high = param.depth  # type: ignore[misc]
    return [rng.choice(param.width)] * rng.randint(low, high)  # type: ignore[arg-type]


def explore(values: dict[str, Any], tune: TuneConfig, rng: random.Random) -> dict[str, Any]:
    """The values a member takes over, with its mutable parameters perturbed or redrawn."""
    config = tune.pbt
    out = dict(values)
    for path in mutable(tune.space):
        param = tune.space[path]
        if rng.random() < config.resample_probability:
            out[path] = sample(param, rng)
            continue
        low, high = param.log_uniform or param.uniform  # type: ignore[misc]
        out[path] = min(max(values[path] * rng.choice(config.perturb), low), high)
    return out


@dataclass
class Population:
    """The members, their folders and the lineage so far (``lineage.json``)."""

    base: dict[str, Any]
    tune: TuneConfig
    experiment: Experiment
    folder: Path
    source: str
    say: Callable[[str], None]

    @property
    def pbt_folder(self) -> Path:
        return self.folder / "pbt"

    def member_folder(self, index: int) -> Path:
        return self.pbt_folder / f"member-{index}"

    def first_run(self, member: Member, steps: int) -> None:
        from mentor import api

        experiment = trial_experiment(
            self.base, member.values, self.source, seed=member.seed, name=f"member-{member.index}",
            output_dir=str(self.pbt_folder), **{"stopping.total_steps": steps,
            "stopping.target_return": None, "logging.progress": False},
        )  # fmt: skip
        api.train(experiment, overwrite=True)

    def go_on(self, member: Member, steps: int) -> None:
        """Resume the member to ``steps`` with its values (a member that got there already,
        before an interrupted interval was run again, is left as it is)."""
        from mentor import api
        from mentor.runs import checkpoint

        if checkpoint.newest_intact(self.member_folder(member.index)).step >= steps:
            return
        overrides = [override(path, member.values[path]) for path in mutable(self.tune.space)]
        api.resume(self.member_folder(member.index), [*overrides, f"stopping.total_steps={steps}"])

    def score(self, member: Member) -> float:
        """The member's last validation mean return."""
        import csv

        with open(self.member_folder(member.index) / "validation.csv") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["return_mean"]) if rows else float("nan")

    def copy(self, source: Member, target: Member) -> None:
        """``target`` becomes a copy of ``source``'s run: weights, optimizer, RNGs, envs."""
        into = self.member_folder(target.index)
        staged = into.with_name(f".{into.name}.copy")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(self.member_folder(source.index), staged)
        shutil.rmtree(into)
        staged.rename(into)


def run_pbt(
    file: str | Path,
    *,
    name: str | None = None,
    folder: str | Path | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``mentor tune FILE --pbt``: the population of ``file``'s tune section, in ``folder``
    (default ``tunes/<name>``, the name from the file as for a study)."""
    from mentor.tune.study import claim_folder, load_study_file

    base, tune, experiment = load_study_file(file)
    name = name or Path(file).stem.removeprefix("tune-")
    where = Path(folder) if folder is not None else Path("tunes") / name
    claim_folder(where, name, "pbt")
    return pbt(base, tune, experiment, where, str(file), say)


def pbt(
    base: dict[str, Any],
    tune: TuneConfig,
    experiment: Experiment,
    folder: Path,
    source: str,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or go on with) the population; returns ``best.json``'s content."""
    config = tune.pbt
    interval, total = config.interval_steps, experiment.stopping.total_steps
    if interval > total:
        raise ConfigError(
            f"tune.pbt.interval_steps={interval:,} is above stopping.total_steps={total:,}: "
            "members must stop at least once to be compared"
        )
    if experiment.validation.every_steps > interval:
        raise ConfigError(
            f"validation.every_steps={experiment.validation.every_steps:,} is above "
            f"tune.pbt.interval_steps={interval:,}: a member is scored by its last validation"
        )
    if not mutable(tune.space):
        raise ConfigError(
            "tune --pbt perturbs floats of the method and exploration sections (log_uniform or "
            "uniform, unconditional); the space has none"
        )
    population = Population(base, tune, experiment, folder, source, say)
    population.pbt_folder.mkdir(parents=True, exist_ok=True)
    lineage_path = population.pbt_folder / "lineage.json"
    lineage: list[dict[str, Any]] = (
        json.loads(lineage_path.read_text()) if lineage_path.exists() else []
    )
    members = _members(population, lineage)
    generations = math.ceil(total / interval)
    done = max((row["generation"] for row in lineage), default=-1) + 1
    for generation in range(done, generations):
        steps = min((generation + 1) * interval, total)
        for member in members:
            if generation == 0:
                population.first_run(member, steps)
            else:
                population.go_on(member, steps)
        scores = {member.index: population.score(member) for member in members}
        rows = [
            {"generation": generation, "step": steps, "member": m.index, "seed": m.seed,
             "score": scores[m.index], "values": m.values, "parent": m.parent}
            for m in members
        ]  # fmt: skip
        say(_summary(generation, steps, rows))
        if generation + 1 < generations:
            _exploit_and_explore(population, members, scores, generation)
        lineage += rows
        _write(lineage_path, lineage)
    return _finish(population, lineage)


def _members(population: Population, lineage: list[dict[str, Any]]) -> list[Member]:
    """The members as the lineage left them (after the last interval's exploit), or new ones."""
    tune = population.tune
    config = tune.pbt
    if lineage:
        last = max(row["generation"] for row in lineage)
        saved = json.loads((population.pbt_folder / "members.json").read_text())
        if saved["after_generation"] == last:
            return [Member(**m) for m in saved["members"]]
    rng = random.Random(tune.sampler_seed)
    members = []
    for index in range(config.population):
        values = {path: sample(param, rng) for path, param in tune.space.items() if not param.when}
        members.append(Member(index, tune.seeds[0] + index, values))
    return members


def _exploit_and_explore(
    population: Population, members: list[Member], scores: dict[int, float], generation: int
) -> None:
    tune = population.tune
    rng = random.Random(f"{tune.sampler_seed}-{generation}")
    ranked = sorted(members, key=lambda m: _finite(scores[m.index]), reverse=True)
    cut = max(1, int(len(members) * tune.pbt.quantile))
    top, bottom = ranked[:cut], ranked[-cut:]
    for member in members:
        member.parent = None
    for loser in bottom:
        if loser in top:
            continue
        winner = rng.choice(top)
        population.copy(winner, loser)
        loser.values = explore(winner.values, tune, rng)
        loser.seed = winner.seed
        loser.parent = winner.index
    _write(
        population.pbt_folder / "members.json",
        {"after_generation": generation, "members": [vars(m) for m in members]},
    )


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _summary(generation: int, steps: int, rows: list[dict[str, Any]]) -> str:
    best = max(rows, key=lambda row: _finite(row["score"]))
    return (
        f"pbt interval {generation} (step {steps:,}): best member {best['member']} "
        f"{best['score']:.2f}, scores " + ", ".join(f"{row['score']:.1f}" for row in rows)
    )


def _finish(population: Population, lineage: list[dict[str, Any]]) -> dict[str, Any]:
    last = max(row["generation"] for row in lineage)
    final = [row for row in lineage if row["generation"] == last]
    winner = max(final, key=lambda row: _finite(row["score"]))
    history = _history(lineage, winner["member"])
    best = {
        "member": winner["member"], "score": winner["score"], "step": winner["step"],
        "run": str(population.member_folder(winner["member"])), "history": history,
    }  # fmt: skip
    _write(population.pbt_folder / "best.json", best)
    try:
        plot_lineage(lineage, mutable(population.tune.space), population.pbt_folder / "lineage.png")
    except Exception as exc:  # a plot is a report: its failure does not undo the training
        population.say(f"lineage plot not drawn: {exc}")
    population.say(
        f"pbt best: member {winner['member']} scores {winner['score']:.2f} at step "
        f"{winner['step']:,}: {best['run']}"
    )
    return best


def _history(lineage: list[dict[str, Any]], member: int) -> list[dict[str, Any]]:
    """The values the final best member trained with at each interval, following its copies
    back through the members it came from."""
    by = {(row["generation"], row["member"]): row for row in lineage}
    last = max(row["generation"] for row in lineage)
    history, current = [], member
    for generation in range(last, -1, -1):
        row = by[(generation, current)]
        history.append({"generation": generation, "member": current, "values": row["values"],
                        "score": row["score"]})  # fmt: skip
        if row.get("parent") is not None:  # it took over its parent after the interval before
            current = row["parent"]
    return list(reversed(history))


def plot_lineage(lineage: list[dict[str, Any]], params: list[str], path: Path) -> None:
    """Scores and mutable values over steps, one line per member; a copy is a jump from the
    parent's last point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = sorted({row["member"] for row in lineage})
    panels = ["score", *params]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True)
    axes = [axes] if len(panels) == 1 else list(axes)
    by = {(row["generation"], row["member"]): row for row in lineage}
    for ax, panel in zip(axes, panels, strict=True):
        for member in members:
            rows = sorted((r for r in lineage if r["member"] == member), key=lambda r: r["step"])
            xs, ys = [], []
            for row in rows:
                parent = row.get("parent")
                if parent is not None and (row["generation"] - 1, parent) in by and xs:
                    source = by[(row["generation"] - 1, parent)]
                    xs.append(source["step"])
                    ys.append(_panel(source, panel))
                xs.append(row["step"])
                ys.append(_panel(row, panel))
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, label=f"member {member}")
        ax.set_ylabel(panel.rsplit(".", 1)[-1] if panel != "score" else "validation return")
        if panel != "score" and "learning_rate" in panel:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=4)
    axes[0].set_title("population-based training: each member's score and values")
    axes[-1].set_xlabel("env steps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(row: dict[str, Any], panel: str) -> float:
    return row["score"] if panel == "score" else row["values"].get(panel, float("nan"))


def _write(path: Path, data: Any) -> None:
    from mentor.tune.study import write_json

    write_json(path, data)
