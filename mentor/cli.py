"""The ``mentor`` command line. Bad input exits with code 2 and one readable line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mentor.errors import ConfigError, MentorError

if TYPE_CHECKING:
    from mentor.agent import Agent
    from mentor.experiment import Experiment
    from mentor.runs.session import Result

app = typer.Typer(
    help="Train agents along one workflow: environment → training → evaluation → report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from mentor import __version__

        console.print(f"mentor {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Train agents along one workflow: environment → training → evaluation → report."""


SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a field: section.key=value (repeatable)."),
]


def _defaults_epilog() -> str:
    from mentor.experiment import describe_defaults

    return "Experiment fields, their defaults and descriptions:\n\n" + describe_defaults()


@app.command(epilog=_defaults_epilog())
def train(
    target: Annotated[str, typer.Argument(help="An experiment YAML file, or a method (ppo).")],
    env_id: Annotated[
        str | None, typer.Argument(help="Env id, when TARGET is a method (e.g. CartPole-v1).")
    ] = None,
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option(help="Seed (same as --set seed=N).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (folder under output_dir).")] = None,
    output_dir: Annotated[str | None, typer.Option(help="Where run folders go.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a run folder of the same name.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="Ray rollout workers (distributed.workers).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="A Ray cluster's host:port (distributed.address).")
    ] = None,
) -> None:
    """Train an agent: `mentor train experiment.yaml` or `mentor train ppo CartPole-v1`.

    Every field of the experiment can be overridden with --set; `mentor show-defaults ppo`
    lists them all with their defaults and descriptions.
    """
    from mentor.experiment import build  # torch-free: a bad file fails before torch loads

    overrides = list(set_ or [])
    named = (("seed", seed), ("name", name), ("output_dir", output_dir),
             ("distributed.address", address))  # fmt: skip
    for key, value in named:
        if value is not None:
            overrides.append(f"{key}={value}")
    if quiet:
        overrides.append("logging.progress=false")
    is_file = target.endswith((".yaml", ".yml")) or Path(target).is_file()
    if is_file:
        if env_id is not None:
            raise ConfigError(
                f"got an experiment file '{target}' and an env id '{env_id}': "
                "give one (use --set env.id=... to change the file's env)"
            )
        where = {"file": target}
    else:
        if env_id is None:
            raise ConfigError(
                f"'{target}' is not an experiment file; to train without a file give a method "
                "and an env id: mentor train ppo CartPole-v1"
            )
        from mentor.envs.pettingzoo import check_id

        check_id(env_id)  # unknown ids fail here, with close matches
        where = {"method": target, "env_id": env_id}
    if workers is not None:
        overrides += _workers_overrides(workers, overrides, where)
    experiment = build(**where, overrides=overrides)
    with _second_interrupt():
        from mentor import api

        result = api.train(experiment, overwrite=overwrite)
    console.print(f"[bold]run[/bold] {result.run_dir}")
    console.print(f"stopped: {result.stop_reason} after {result.total_steps:,} steps, "
                  f"{result.train_seconds:.1f} s of training")  # fmt: skip
    _report_result(result)


@contextmanager
def _second_interrupt() -> Iterator[None]:
    """A second Ctrl-C (or one outside training) ends the command at once: one line, exit 130.
    The checkpoints written so far are complete (they are written atomically)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        # A bare KeyboardInterrupt comes from outside training (while mentor starts or ends):
        # whatever the run folder holds is complete.
        why = str(exc) or "interrupted (Ctrl-C) while mentor was starting or ending"
        err_console.print(f"stopped: {why}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def _report_result(result: Result) -> None:
    if result.evaluation is not None:
        title = {
            "best": "final evaluation (best on validation)",
            "final": "final evaluation (the final weights: no validation ran)",
        }[result.evaluated or "best"]
        print_summary(result.evaluation.to_dict(), title)
    if result.stop_reason.startswith("interrupted"):
        raise typer.Exit(130)


def _workers_overrides(workers: int, overrides: list[str], where: dict[str, str]) -> list[str]:
    """``--workers N``: distributed.workers, and env.num_envs raised to a multiple of N when the
    experiment's does not divide (each worker steps the same number of copies) and was not
    given with --set: `mentor train sac Pendulum-v1 --workers 8` steps 8 copies, one each."""
    from mentor.experiment import build

    added = [f"distributed.workers={workers}"]
    if workers < 1 or any(o.startswith("env.num_envs=") for o in overrides):
        return added
    num_envs = build(**where, overrides=overrides).env.num_envs
    if num_envs % workers:
        wanted = -(-num_envs // workers) * workers
        console.print(f"env.num_envs {num_envs} -> {wanted}: each of the {workers} Ray workers "
                      f"steps {wanted // workers} copies")  # fmt: skip
        added.append(f"env.num_envs={wanted}")
    return added


@app.command()
def resume(
    run: Annotated[str, typer.Argument(help="The run folder to continue (runs/NAME).")],
    set_: SetOption = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Continue a stopped run from its newest intact checkpoint, exactly where it was.

    A run stopped by Ctrl-C, SIGTERM, a kill or a crash goes on as if it had never stopped.
    A finished run goes on with a larger budget: --set stopping.total_steps=N.
    """
    from mentor import api

    overrides = list(set_ or [])
    if quiet:
        overrides.append("logging.progress=false")
    with _second_interrupt():
        result = api.resume(run, overrides)
    console.print(f"[bold]run[/bold] {result.run_dir}")
    console.print(f"stopped: {result.stop_reason} after {result.total_steps:,} steps, "
                  f"{result.train_seconds:.1f} s of training")  # fmt: skip
    _report_result(result)


@app.command("eval")
def eval_(
    path: Annotated[str, typer.Argument(help="A run folder or a checkpoint folder.")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play.")] = 100,
    num_envs: Annotated[
        int, typer.Option(min=1, help="Env copies; the episodes are split evenly among them.")
    ] = 25,
    env: Annotated[str | None, typer.Option(help="Env id (default: the run's).")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Success return (default: env's reward threshold).")
    ] = None,
    stochastic: Annotated[bool, typer.Option(help="Sample actions instead of the mode.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the evaluation envs.")] = 12_345,
    out: Annotated[str | None, typer.Option(help="JSON file to write.")] = None,
    opponent: Annotated[
        str | None,
        typer.Option(
            help="A game's opponent: random, package.module:function, or a run/checkpoint "
            "folder (default for a self-play run: its selfplay.validate_against)."
        ),
    ] = None,
    games: Annotated[
        int | None, typer.Option(min=1, help="Games against the opponent (default: --episodes).")
    ] = None,
    perturb: Annotated[
        list[str] | None,
        typer.Option(
            help="A perturbation, name=value (repeatable): obs_noise, action_noise (in units of "
            "each dimension's half-range), param.NAME (an env parameter's value)."
        ),
    ] = None,
) -> None:
    """Evaluate an agent: mean, std, IQM, 95% bootstrap CIs (BCa), success rate (the env's
    is_success when it is one of env.info_keys, else the threshold), length, and the mean of
    each of env.info_keys. Against an opponent (--opponent, or a self-play run): win, draw and
    loss rates with Wilson 95% intervals, the agent's seat alternating."""
    from mentor import api
    from mentor.runs.folder import write_json

    agent = api.load(path)
    selfplay = agent.experiment.selfplay
    if opponent is not None or (selfplay is not None and env is None):
        if env is not None:
            raise ConfigError("--opponent plays the agent's own game: leave --env out")
        spec = opponent or selfplay.validate_against
        _eval_match(agent, spec, games or episodes, num_envs, seed, stochastic, out)
        return
    if env is not None:
        from mentor.envs.pettingzoo import check_id

        check_id(env)
    summary = api.evaluate(
        agent, env, episodes, num_envs=num_envs, deterministic=not stochastic, seed=seed,
        success_threshold_value=threshold, perturb=perturb,
    )  # fmt: skip
    env_id = env or agent.experiment.validation.env.id or agent.experiment.env.id
    data = {"env_id": env_id, "checkpoint": str(agent.folder), **summary.to_dict(),
            "episode_returns": list(summary.returns)}  # fmt: skip
    name = f"eval_{env_id.replace('/', '_').replace(':', '_')}_{episodes}ep.json"
    if perturb:
        from mentor.evaluation.perturb import Perturbation

        shift = Perturbation.parse(perturb)
        assert shift is not None
        data["perturbation"] = shift.to_dict()
        tag = "_".join(p.replace("=", "").replace(".", "") for p in perturb)
        name = name.replace(".json", f"_{tag}.json")
        env_id = f"{env_id} under {shift.describe()}"
    target = Path(out) if out else _home_of(agent.folder) / name
    write_json(target, data)
    print_summary(data, f"{env_id}, {episodes} episodes, {agent.folder}")
    if stochastic:
        sampling = getattr(agent.policy, "sampling", "a sample of the policy's distribution")
        console.print(f"stochastic actions: {sampling}", highlight=False)
    console.print(f"written: {target}")


def _eval_match(
    agent: Agent, spec: str, games: int, num_envs: int, seed: int, stochastic: bool, out: str | None
) -> None:
    from mentor.runs.folder import write_json
    from mentor.selfplay import make_opponent
    from mentor.selfplay.match import play_match

    opponent = make_opponent(spec, agent, "--opponent")
    result = play_match(agent, opponent, games, num_envs=num_envs, seed=seed,
                        deterministic=not stochastic)  # fmt: skip
    data = {"env_id": agent.experiment.env.id, "checkpoint": str(agent.folder),
            **result.to_dict()}  # fmt: skip
    label = Path(spec).name if Path(spec).exists() else spec.replace(":", "_").replace("/", "_")
    target = Path(out) if out else _home_of(agent.folder) / f"eval_vs_{label}_{games}g.json"
    write_json(target, data)
    for line in result.lines():
        console.print(line, highlight=False)
    console.print(f"written: {target}")


def _home_of(checkpoint_folder: Path) -> Path:
    """Where an evaluation of a checkpoint is written: its run folder (final/, checkpoints/x)
    or, for a checkpoint outside any run (an export), the checkpoint folder itself."""
    for parent in checkpoint_folder.parents[:2]:
        if (parent / "manifest.json").is_file():
            return parent
    return checkpoint_folder


@app.command()
def export(
    path: Annotated[str, typer.Argument(help="A run folder or a checkpoint folder.")],
    out: Annotated[str, typer.Argument(help="The folder to write (must not exist).")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="safetensors: the agent for mentor; onnx or torchscript: also the policy as "
            "one function that runs without mentor (policy.onnx or policy.pt, export.json).",
        ),
    ] = "safetensors",
) -> None:
    """Write the agent alone (weights and what loading them needs, no training state) for
    deployment; `mentor eval OUT` and `mentor.load(OUT)` read it. With --format onnx or
    torchscript, the policy runs without mentor too, checked against mentor's actions."""
    from mentor import api

    folder = api.export(path, out, format=format)
    console.print(f"written: {folder}")
    info = folder / "export.json"
    if info.is_file():
        checked = json.loads(info.read_text())["checked"]
        said = {k: v for k, v in checked.items() if k not in ("observations", "ok")}
        console.print(
            f"checked against mentor's actions on {checked['observations']} observations: {said}"
        )


@app.command()
def backtest(
    experiment: Annotated[str, typer.Argument(help="An experiment YAML on the market env.")],
    set_: SetOption = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Seeds (backtest.seeds); repeat it.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Folder name under output_dir.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a folder of the same name.")] = False,
) -> None:
    """Walk-forward: train, pick on validation and test once per fold and seed, beside the
    baselines; prints the test periods' table and writes it with plots (`backtest` section)."""
    from mentor.experiment import build

    overrides = list(set_ or [])
    if seeds:
        overrides.append(f"backtest.seeds={list(seeds)}")
    if name is not None:
        overrides.append(f"name={name}")
    _backtest(build(file=experiment, overrides=overrides), overwrite)


def _backtest(experiment: Experiment, overwrite: bool) -> None:
    from mentor.experiment.schema import BacktestConfig
    from mentor.walkforward import per_fold, run_walk_forward, table

    say = console.print if experiment.logging.progress else (lambda text: None)
    with _second_interrupt():
        result = run_walk_forward(experiment, overwrite, say)
    confidence = (experiment.backtest or BacktestConfig()).confidence
    console.print(f"\n[bold]test periods[/bold], mean [{confidence:.0%} bootstrap interval] over "
                  "folds and seeds:", highlight=False)  # fmt: skip
    console.print(table(result, confidence), highlight=False, markup=False, soft_wrap=True)
    console.print("\nper fold (median over seeds):", highlight=False)
    console.print(per_fold(result), highlight=False, markup=False, soft_wrap=True)
    console.print(f"written: {result.folder / 'summary.md'}, walk_forward.png, .json, .csv")


DEMOS = {"trading": _backtest}


@app.command()
def demo(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(DEMOS)}.")],
    overwrite: Annotated[bool, typer.Option(help="Replace the demo's folder.")] = True,
) -> None:
    """Run a shipped example end to end: `mentor demo trading` (its YAML: examples/)."""
    from importlib.resources import files

    from mentor.experiment import build

    if name not in DEMOS:
        raise ConfigError(f"demo '{name}' does not exist; demos: {', '.join(DEMOS)}")
    path = files("mentor") / "demos" / f"{name}.yaml"
    DEMOS[name](build(file=str(path), overrides=[]), overwrite)


@app.command()
def report(
    path: Annotated[str, typer.Argument(help="A run folder.")],
    compare: Annotated[
        str | None,
        typer.Option(help="Another run folder, beside this one in the robustness section."),
    ] = None,
) -> None:
    """Write the learning curve (PNG) and a summary (Markdown and HTML) of a run."""
    from mentor.report.report import write_report

    folder = write_report(path, compare)
    for name in ("learning_curve.png", "report.md", "report.html"):
        console.print(f"written: {folder / name}")


@app.command()
def explain(
    path: Annotated[str, typer.Argument(help="A run folder.")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes played and explained.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the episodes' env.")] = 0,
    baseline: Annotated[
        str | None,
        typer.Option(help="mean (the observations' mean; vectors' default) or zeros (images')."),
    ] = None,
    steps: Annotated[int, typer.Option(min=2, help="Points on the integration path.")] = 50,
) -> None:
    """Attribute each decision's chosen action (and its value) to the observation's features
    with integrated gradients (captum): explain/explain.json and plots, shown by mentor report."""
    from mentor.explain import explain as attribute
    from mentor.report.report import write_report

    summary = attribute(path, episodes=episodes, seed=seed, baseline=baseline, steps=steps)
    for label, target in summary["targets"].items():
        top = sorted(target["mean_abs"].items(), key=lambda kv: -kv[1])[:5]
        shown = ", ".join(f"{name} {value:.3g}" for name, value in top)
        console.print(f"{label}: mean |attribution| {shown}")
    console.print(f"{summary['decisions']:,} decisions of {episodes} episodes; {summary['note']}")
    folder = write_report(path)
    console.print(f"written: {Path(path) / 'explain'}/ and {folder / 'report.html'}")


@app.command()
def play(
    path: Annotated[str, typer.Argument(help="A run folder or a checkpoint folder of a game.")],
    seat: Annotated[
        str | None,
        typer.Option("--as", help="Your seat: an agent's name, first or second (default: turns)."),
    ] = None,
    games: Annotated[int, typer.Option(min=1, help="Games to play.")] = 1,
    window: Annotated[
        bool, typer.Option(help="Show the env's own pygame window (moves still typed here).")
    ] = False,
) -> None:
    """Play against a trained agent in the terminal: the board as text, your moves typed (the
    allowed ones listed), q to stop."""
    from mentor import api
    from mentor.selfplay.play import play as play_games

    scores = play_games(api.load(path), seat=seat, games=games, window=window,
                        say=lambda text: console.print(text, highlight=False))  # fmt: skip
    if scores:
        wins, draws = sum(s == 1.0 for s in scores), sum(s == 0.5 for s in scores)
        console.print(f"you: {wins} wins, {draws} draws, {len(scores) - wins - draws} losses")


@app.command()
def league(
    run: Annotated[str, typer.Argument(help="A self-play run folder.")],
) -> None:
    """A self-play run's ratings: every player of its pool and baselines (and a league's
    exploiters), best first (role, OpenSkill ordinal, mu, sigma, Elo, games, wins/draws/losses),
    and league.png (the learner's ratings over training, every player's at the end)."""
    from mentor.report.league import plot_league, read_league, rows

    data = read_league(run)
    table = Table(title=f"league of {run} at step {data['step']:,}")
    for column in ("player", "role", "ordinal", "mu ± sigma", "Elo", "games", "W/D/L"):
        if column == "player":  # a baseline's module:function name is long: folded, not cut
            table.add_column(column, overflow="fold", min_width=8)
        elif column == "role":  # "league exploiter" on two lines in a narrow terminal
            table.add_column(column, min_width=9)
        else:
            table.add_column(column, justify="right", no_wrap=True)
    for name, role, ordinal, mu, sigma, *rest in rows(data):
        table.add_row(name, role, ordinal, f"{mu} ± {sigma}", *rest)
    console.print(table)
    console.print(f"written: {plot_league(data, Path(run) / 'league.png')}")


@app.command("transfer-report")
def transfer_report(
    runs: Annotated[
        list[str], typer.Argument(help="Run folders that started from a checkpoint (agent.init).")
    ],
    scratch: Annotated[
        list[str],
        typer.Option("--scratch", help="A run of the same experiment from scratch (repeat)."),
    ],
    threshold: Annotated[
        float | None,
        typer.Option(help="The return to reach (default: the runs' stopping target)."),
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Where to write (default: RUN/transfer of the first run).")
    ] = None,
) -> None:
    """Jumpstart, steps to a threshold, area under the curve and asymptotic return of transferred
    runs against runs from scratch, with 95% intervals over seeds; a plot of both."""
    from mentor.report.transfer import rows, transfer_report

    report, folder = transfer_report(runs, scratch, threshold, out)
    sources = ", ".join(report["sources"]) or "-"
    table = Table(title=f"transfer: {len(runs)} runs from {sources}, {len(scratch)} from scratch")
    for column in ("measure", "transferred", "scratch", "difference [95% CI]"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for row in rows(report):
        table.add_row(*row)
    console.print(table)
    for note in report["notes"]:
        console.print(f"note: {note}")
    for name in ("transfer.json", "transfer.png"):
        console.print(f"written: {folder / name}")


@app.command("check-env")
def check_env(
    env_id: Annotated[
        str,
        typer.Argument(help="Gymnasium id, package.module:ClassName, or a PettingZoo env."),
    ],
    kwargs: Annotated[str, typer.Option(help="Env kwargs as JSON.")] = "{}",
    steps: Annotated[int, typer.Option(min=1, help="Steps of the random rollout.")] = 200,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Check an env against the Gymnasium API (a PettingZoo env: PettingZoo's own API test)
    and mentor's own checks."""
    from mentor.envs.checker import check_env as run_checks
    from mentor.envs.checker import render_report
    from mentor.envs.pettingzoo import is_multiagent

    try:
        parsed = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--kwargs is not valid JSON: {exc}") from None
    if is_multiagent(env_id, parsed):
        check_multiagent_env(env_id, parsed, steps, seed)
        return
    result = run_checks(env_id, parsed, num_steps=steps, seed=seed)
    render_report(result, console)
    if not result.ok:
        raise typer.Exit(2)


def check_multiagent_env(env_id: str, kwargs: dict, steps: int, seed: int) -> None:
    """check-env for a PettingZoo env: PettingZoo's parallel API test, then mentor's rollout
    through its multi-agent adapter (FAULT-12's checks); a failure is one line and exit 2."""
    from mentor.core.agent_rows import common_spaces, space_groups
    from mentor.core.ma_env import check_rollout
    from mentor.envs.pettingzoo import (
        agent_spaces,
        api_test,
        has_state,
        is_turn_based,
        make_parallel_env,
    )
    from mentor.envs.spaces import describe

    env = make_parallel_env(env_id, kwargs)
    try:
        per_agent = agent_spaces(env, env_id)
        agents, state, turns = list(env.possible_agents), has_state(env), is_turn_based(env)
        common_spaces(env_id, tuple(agents), per_agent)  # agents that cannot share rows fail here
    finally:
        env.close()
    table = Table(title=f"check-env {env_id} (PettingZoo)", show_header=False)
    table.add_row("agents", ", ".join(agents))
    groups = space_groups(per_agent)
    for group in range(max(groups) + 1):
        members = [agent for agent, g in zip(agents, groups, strict=True) if g == group]
        obs_space, act_space = per_agent[groups.index(group)]
        each = "each" if max(groups) == 0 else ", ".join(members)
        table.add_row(f"observation space ({each})", describe(obs_space))
        table.add_row(f"action space ({each})", describe(act_space))
    table.add_row(
        "global state", "yes (env.state())" if state else "no: mappo needs critic=observations"
    )
    table.add_row(
        "turns",
        "agents take turns: one moves a step, the others wait"
        if turns
        else "every live agent acts each step",
    )
    warnings = api_test(env_id, kwargs)
    table.add_row("PettingZoo parallel_api_test", "passed")
    for warning in warnings:
        table.add_row("  warning", Text(warning))
    check_rollout(env_id, kwargs, steps=steps, seed=seed)
    table.add_row(f"mentor: {steps} random steps as rows", "passed")
    console.print(table)


def _seconds(text: str | None) -> float | None:
    """'900', '15m', '1h30m', '45s' as seconds."""
    if text is None:
        return None
    import re

    match = re.fullmatch(
        r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip()
    )
    if not text.strip() or match is None or not any(match.groups()):
        raise ConfigError(f"--timeout '{text}' is not a duration: give seconds (900) or 15m, 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@app.command()
def tune(
    file: Annotated[str, typer.Argument(help="An experiment YAML file with a tune: section.")],
    trials: Annotated[
        int | None,
        typer.Option(help="Finished trials the study should have (default: tune.trials)."),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(help="Search time: seconds, or 15m, 1h30m (default: tune.timeout)."),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="An Optuna storage URL (default: SQLite in the folder).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Study name and folder under tunes/ (default: the file's).")
    ] = None,
    folder: Annotated[
        str | None, typer.Option(help="The tuning folder (default: tunes/NAME).")
    ] = None,
    recheck: Annotated[
        bool, typer.Option(help="Re-run the best trials on fresh seeds at the end (best.yaml).")
    ] = True,
    pbt: Annotated[
        bool, typer.Option("--pbt", help="Population-based training instead of a study.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="Ray tasks searching side by side (trials in parallel).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="A Ray cluster's host:port for --workers.")
    ] = None,
) -> None:
    """Tune an experiment with Optuna: `mentor tune examples/tune-acrobot.yaml --trials 40`.

    Each trial trains once per seed of tune.seeds and is scored by the IQM over them; running
    again resumes the study. The best trials are re-checked on fresh seeds: tunes/NAME/best.yaml.
    """
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    say = lambda line: console.print(line, highlight=False, soft_wrap=True)  # noqa: E731
    if pbt:
        from mentor.tune.pbt import run_pbt

        with _second_interrupt():
            best = run_pbt(file, name=name, folder=folder, say=say)
        console.print(f"[bold]best member[/bold] {best['run']} (lineage.png beside it)")
        return
    from mentor.tune.study import tune as run_tune

    with _second_interrupt():
        result = run_tune(
            file, name=name, folder=folder, storage=storage, trials=trials,
            timeout=_seconds(timeout), recheck=recheck, workers=workers, address=address,
            say=say,
        )  # fmt: skip
    console.print(f"[bold]tuning folder[/bold] {result.folder} (study '{result.study_name}')")
    if result.best_yaml is not None:
        console.print(f"train the winner: mentor train {result.best_yaml}")


@app.command("tune-report")
def tune_report(
    folder: Annotated[str, typer.Argument(help="A tuning folder (tunes/NAME).")],
    storage: Annotated[
        str | None, typer.Option(help="The study's storage URL (default: the folder's study.db).")
    ] = None,
) -> None:
    """The trials of a study as a table, parameter importances and plots (PNG and HTML)."""
    from mentor.tune.report import write_tune_report

    page = write_tune_report(folder, storage=storage, console=console)
    console.print(f"[bold]report[/bold] {page}")


@app.command("show-defaults")
def show_defaults(
    method: Annotated[str, typer.Argument(help="Method name.")] = "ppo",
    env_id: Annotated[str | None, typer.Argument(help="Also show this env's preset.")] = None,
) -> None:
    """Print every experiment field with its default and description (and a preset)."""
    import yaml

    from mentor.experiment import REQUIRED, build, describe_defaults, preset, required_fields

    preset(method, env_id or "")  # validates the method name
    if env_id is None:
        # soft_wrap: long descriptions stay on their line, so the output is valid YAML.
        console.print(describe_defaults(method), markup=False, highlight=False, soft_wrap=True)
        return
    # A field without a default (dagger's method.expert) shows as <required>.
    required = required_fields(method)
    experiment = build(
        method=method, env_id=env_id, overrides=[f"{path}={REQUIRED}" for path in required]
    )
    console.print(f"# {method} on {env_id}: defaults + preset", markup=False)
    if required:
        console.print(f"# {REQUIRED}: set with --set ({', '.join(required)})", markup=False)
    console.print(yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False),
                  markup=False, highlight=False)  # fmt: skip


@app.command()
def envs(
    filter_: Annotated[str, typer.Argument(help="Show ids containing this text.")] = "",
    all_: Annotated[
        bool,
        typer.Option("--all", help="Also list the ids that need a package not installed here."),
    ] = False,
) -> None:
    """List registered Gymnasium env ids and the presets mentor ships.

    Ids that cannot be made here (a package they need is not installed) are left out, and counted
    below the table with what would install it; --all lists them too, dimmed, with the reason.
    """
    import gymnasium as gym

    from mentor.envs.resolve import missing_namespaces, registered_envs
    from mentor.experiment import available_presets

    presets = available_presets()
    ids = {i: why for i, why in registered_envs().items() if filter_.lower() in i.lower()}
    table = Table(
        "env id", "reward threshold", "presets", *(["cannot be made here"] if all_ else [])
    )
    for env_id in sorted(ids):
        why = ids[env_id]
        if why is not None and not all_:
            continue
        spec = gym.registry[env_id]
        with_preset = [m for m, envs_ in presets.items() if env_id in envs_]
        threshold = "" if spec.reward_threshold is None else f"{spec.reward_threshold:g}"
        row = [Text(env_id), Text(threshold), Text(", ".join(with_preset))]
        if all_:
            row.append(Text(why or ""))
        table.add_row(*row, style="dim" if why else None)
    if table.row_count:
        console.print(table)
    if not all_:
        hidden: dict[str, int] = {}
        for why in ids.values():
            if why is not None:
                hidden[why] = hidden.get(why, 0) + 1
        for why, count in sorted(hidden.items(), key=lambda item: -item[1]):
            verb = why if count == 1 else why.replace("needs", "need", 1)
            more = "more " if table.row_count else ""
            line = f"{count} {more}id{'s' if count != 1 else ''} {verb}"
            console.print(line, highlight=False, markup=False, style="dim")
        if hidden:
            console.print("(--all lists them)", style="dim", highlight=False)
    for namespace, why in missing_namespaces().items():
        if not filter_ or filter_.lower() in f"{namespace.lower()}/":
            line = f"{namespace}/... ids {why.replace('needs', 'need', 1)}"
            console.print(line, highlight=False, markup=False, style="dim")


@app.command("record")
def record_(
    expert: Annotated[
        str | None,
        typer.Argument(
            help="A run or checkpoint folder, or package.module:function (a batch of "
            "observations -> a batch of actions); '-' or nothing with --human."
        ),
    ] = None,
    env: Annotated[str, typer.Option(help="Env id or package.module:ClassName.")] = ...,  # type: ignore[assignment]
    episodes: Annotated[int, typer.Option(min=1, help="Whole episodes to record.")] = 10,
    out: Annotated[
        str, typer.Option(help="Dataset folder to write (its name is the Minari dataset id).")
    ] = ...,  # type: ignore[assignment]
    seed: Annotated[int, typer.Option(help="Episode i is reset with seed + i.")] = 0,
    human: Annotated[
        bool, typer.Option(help="A person plays with the keyboard in the env's window.")
    ] = False,
    kwargs: Annotated[str, typer.Option(help="Env kwargs as JSON.")] = "{}",
    max_episode_steps: Annotated[
        int | None, typer.Option(min=1, help="Truncate episodes after this many steps.")
    ] = None,
    num_envs: Annotated[int, typer.Option(min=1, help="Env copies stepped together.")] = 1,
    data_format: Annotated[str, typer.Option(help="Minari storage: hdf5 or arrow.")] = "hdf5",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset folder.")] = False,
) -> None:
    """Record demonstrations from an agent, a function or a person into a dataset folder.

    The folder is in Minari's format: `mentor dataset info` reads it, data.path trains on it,
    and minari.load_dataset opens it with MINARI_DATASETS_PATH set to the folder's parent.
    """
    from mentor.agent import policy_from
    from mentor.data.load import save_dataset
    from mentor.data.record import human_policy, record
    from mentor.envs.resolve import spec

    try:
        env_kwargs = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--kwargs is not valid JSON: {exc}") from None
    if not isinstance(env_kwargs, dict):
        raise ConfigError(f"--kwargs must be a JSON object, got {kwargs}")
    spec(env)  # an unknown env id fails here, with close matches
    given = expert not in (None, "-")
    if human and given:
        raise ConfigError(f"give an expert ('{expert}') or --human, not both")
    if not human and not given:
        raise ConfigError("give the expert to record (a run folder or module:function) or --human")
    if human:
        policy, play_kwargs = human_policy(env, env_kwargs)
        dataset = record(policy, env, play_kwargs, episodes, seed, 1, max_episode_steps)
    else:
        policy = policy_from(expert)  # type: ignore[arg-type]
        dataset = record(policy, env, env_kwargs, episodes, seed, num_envs, max_episode_steps)
    folder = save_dataset(
        dataset,
        out,
        env_id=env,
        env_kwargs=env_kwargs,
        max_episode_steps=max_episode_steps,
        seeds=[seed + i for i in range(episodes)],
        data_format=data_format,
        overwrite=overwrite,
    )
    print_dataset(dataset.summary(), str(folder))
    console.print(f"written: {folder}", highlight=False)


dataset_app = typer.Typer(
    help="Inspect datasets: dataset folders, Minari dataset ids, CSV/Parquet tables.",
    no_args_is_help=True,
)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("info")
def dataset_info(
    path: Annotated[
        str, typer.Argument(help="A dataset folder, a Minari dataset id, or a .csv/.parquet file.")
    ],
    set_: SetOption = None,
    obs_columns: Annotated[
        str | None, typer.Option(help="Table: feature columns, comma-separated.")
    ] = None,
    action_column: Annotated[str | None, typer.Option(help="Table: the action column.")] = None,
    reward_column: Annotated[str | None, typer.Option(help="Table: a reward column.")] = None,
    episode_column: Annotated[str | None, typer.Option(help="Table: an episode column.")] = None,
    env: Annotated[
        str | None, typer.Option(help="Check the data against this env's spaces.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarize a dataset: episodes, steps, returns, spaces, the actions taken.

    Table columns come from the options or from --set data.action_column=... (any field of the
    data section; `mentor show-defaults` lists them).
    """
    from mentor.data.load import load_data
    from mentor.experiment import apply_overrides, parse

    section: dict = {"path": path}
    if obs_columns is not None:
        section["observation_columns"] = [c.strip() for c in obs_columns.split(",") if c.strip()]
    for key, value in (
        ("action_column", action_column),
        ("reward_column", reward_column),
        ("episode_column", episode_column),
    ):
        if value is not None:
            section[key] = value
    overrides = [s if s.startswith("data.") else f"data.{s}" for s in set_ or []]
    config = parse(apply_overrides({"data": section}, overrides), "dataset info").data
    obs_space = act_space = None
    if env is not None:
        from contextlib import closing

        from mentor.envs.resolve import make_env, spec

        spec(env)
        with closing(make_env(env)) as made:
            obs_space, act_space = made.observation_space, made.action_space
    summary = load_data(config, obs_space, act_space).summary()
    if json_:
        typer.echo(json.dumps(summary, indent=2))
    else:
        print_dataset(summary, config.path or path)


def print_dataset(data: dict, title: str) -> None:
    """A dataset's summary as a table: sizes, returns, lengths, spaces, actions."""
    table = Table(title=title, show_header=False)
    rows = [
        ("source", data["source"]),
        ("episodes", f"{data['episodes']:,}"),
        ("steps", f"{data['steps']:,}"),
        ("return mean ± std", f"{data['return_mean']:.2f} ± {data['return_std']:.2f}"),
        ("return min / max", f"{data['return_min']:.2f} / {data['return_max']:.2f}"),
        ("episode length mean", f"{data['length_mean']:.1f}"),
        ("episode length min / max", f"{data['length_min']} / {data['length_max']}"),
        ("observation space", data["observation_space"]),
        ("action space", data["action_space"]),
    ]
    if "action_counts" in data:
        total = max(1, sum(data["action_counts"].values()))
        rows.append(("actions", ", ".join(f"{a}: {c:,} ({100 * c / total:.0f}%)"
                                          for a, c in data["action_counts"].items())))  # fmt: skip
    else:
        rows.append(("action mean", str(data["action_mean"])))
        rows.append(("action std", str(data["action_std"])))
    for key, value in rows:
        table.add_row(key, Text(str(value)))
    console.print(table)


def print_summary(data: dict, title: str) -> None:
    table = Table(title=title, show_header=False)
    rows = [
        ("episodes", f"{data['episodes']}"),
        ("return mean ± std", f"{data['return_mean']:.2f} ± {data['return_std']:.2f}"),
        ("95% CI of the mean", f"[{data['return_ci_low']:.2f}, {data['return_ci_high']:.2f}]"),
        ("IQM", f"{data['return_iqm']:.2f}"),
        ("95% CI of the IQM",
         f"[{data['return_iqm_ci_low']:.2f}, {data['return_iqm_ci_high']:.2f}]"),
        ("min / max", f"{data['return_min']:.2f} / {data['return_max']:.2f}"),
        ("episode length", f"{data['length_mean']:.1f}"),
    ]  # fmt: skip
    if data.get("success_rate") is not None:
        threshold = data.get("success_threshold")
        how = "is_success" if threshold is None else f"return ≥ {threshold:g}"
        rows.append((f"success ({how})", f"{100 * data['success_rate']:.0f}%"))
    for key, mean in (data.get("info") or {}).items():
        rows.append((f"{key} (mean)", f"{mean:.4g}"))
    if data.get("agents"):  # a multi-agent env's: the team return, then each agent's
        rows[1] = ("team return mean ± std (per agent)", rows[1][1])
    for name, own in (data.get("agents") or {}).items():
        mean = _estimate(own["return_mean"], own["return_ci_low"], own["return_ci_high"])
        iqm = _estimate(own["return_iqm"], own["return_iqm_ci_low"], own["return_iqm_ci_high"])
        rows.append((f"{name}: mean, IQM (95% CIs)", f"{mean}, {iqm}"))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _estimate(value: float, low: float, high: float) -> str:
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def main() -> None:
    """Entry point: a MentorError is the user's to fix, so print it on one line, exit 2."""
    try:
        app()
    except MentorError as exc:
        # One line whatever the terminal's width (soft_wrap), and the message printed as it is:
        # a '[...]' in it (a list of keys) is text, not rich markup.
        message = Text.assemble(("error:", "bold red"), f" {exc}")
        err_console.print(message, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
