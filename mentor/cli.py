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
    from mentor.runs.session import Result

app = typer.Typer(
    help="Train agents along one workflow: environment → training → evaluation → report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

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
) -> None:
    """Train an agent: `mentor train experiment.yaml` or `mentor train ppo CartPole-v1`.

    Every field of the experiment can be overridden with --set; `mentor show-defaults ppo`
    lists them all with their defaults and descriptions.
    """
    from mentor import api
    from mentor.experiment import build

    overrides = list(set_ or [])
    for key, value in (("seed", seed), ("name", name), ("output_dir", output_dir)):
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
        experiment = build(file=target, overrides=overrides)
    else:
        if env_id is None:
            raise ConfigError(
                f"'{target}' is not an experiment file; to train without a file give a method "
                "and an env id: mentor train ppo CartPole-v1"
            )
        from mentor.envs.resolve import spec

        spec(env_id)  # unknown ids fail here, with close matches
        experiment = build(method=target, env_id=env_id, overrides=overrides)
    with _second_interrupt():
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
        err_console.print(f"stopped: {exc or 'interrupted'}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def _report_result(result: Result) -> None:
    if result.evaluation is not None:
        print_summary(result.evaluation.to_dict(), "final evaluation (best on validation)")
    if result.stop_reason.startswith("interrupted"):
        raise typer.Exit(130)


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
    env: Annotated[str | None, typer.Option(help="Env id (default: the run's).")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Success return (default: env's reward threshold).")
    ] = None,
    stochastic: Annotated[bool, typer.Option(help="Sample actions instead of the mode.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the evaluation envs.")] = 12_345,
    out: Annotated[str | None, typer.Option(help="JSON file to write.")] = None,
) -> None:
    """Evaluate an agent: mean, std, IQM, 95% stratified bootstrap CI, success rate, length."""
    from mentor import api
    from mentor.runs.folder import write_json

    agent = api.load(path)
    if env is not None:
        from mentor.envs.resolve import spec

        spec(env)
    summary = api.evaluate(agent, env, episodes, deterministic=not stochastic, seed=seed,
                           success_threshold_value=threshold)  # fmt: skip
    env_id = env or agent.experiment.validation.env.id or agent.experiment.env.id
    data = {"env_id": env_id, "checkpoint": str(agent.folder), **summary.to_dict()}
    run_dir = (
        agent.folder.parent.parent
        if agent.folder.parent.name == "checkpoints"
        else (agent.folder.parent)
    )
    target = Path(out) if out else run_dir / f"eval_{env_id.replace('/', '_')}_{episodes}ep.json"
    write_json(target, data)
    print_summary(data, f"{env_id}, {episodes} episodes, {agent.folder}")
    console.print(f"written: {target}")


@app.command()
def report(path: Annotated[str, typer.Argument(help="A run folder.")]) -> None:
    """Write the learning curve (PNG) and a summary (Markdown and HTML) of a run."""
    from mentor.report.report import write_report

    folder = write_report(path)
    for name in ("learning_curve.png", "report.md", "report.html"):
        console.print(f"written: {folder / name}")


@app.command("check-env")
def check_env(
    env_id: Annotated[str, typer.Argument(help="Gymnasium id or package.module:ClassName.")],
    kwargs: Annotated[str, typer.Option(help="Env kwargs as JSON.")] = "{}",
    steps: Annotated[int, typer.Option(min=1, help="Steps of the random rollout.")] = 200,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Check an env against the Gymnasium API and mentor's own checks."""
    from mentor.envs.checker import check_env as run_checks
    from mentor.envs.checker import render_report

    try:
        parsed = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--kwargs is not valid JSON: {exc}") from None
    result = run_checks(env_id, parsed, num_steps=steps, seed=seed)
    render_report(result, console)
    if not result.ok:
        raise typer.Exit(2)


@app.command("show-defaults")
def show_defaults(
    method: Annotated[str, typer.Argument(help="Method name.")] = "ppo",
    env_id: Annotated[str | None, typer.Argument(help="Also show this env's preset.")] = None,
) -> None:
    """Print every experiment field with its default and description (and a preset)."""
    import yaml

    from mentor.experiment import build, describe_defaults, preset

    preset(method, env_id or "")  # validates the method name
    if env_id is None:
        # soft_wrap: long descriptions stay on their line, so the output is valid YAML.
        console.print(describe_defaults(method), markup=False, highlight=False, soft_wrap=True)
        return
    experiment = build(method=method, env_id=env_id)
    console.print(f"# {method} on {env_id}: defaults + preset", markup=False)
    console.print(yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False),
                  markup=False, highlight=False)  # fmt: skip


@app.command()
def envs(
    filter_: Annotated[str, typer.Argument(help="Show ids containing this text.")] = "",
) -> None:
    """List registered Gymnasium env ids and the presets mentor ships."""
    import gymnasium as gym

    from mentor.experiment import available_presets

    presets = available_presets()
    table = Table("env id", "reward threshold", "presets")
    for env_id in sorted(gym.registry):
        if filter_.lower() in env_id.lower():
            spec = gym.registry[env_id]
            with_preset = [m for m, envs_ in presets.items() if env_id in envs_]
            threshold = "" if spec.reward_threshold is None else f"{spec.reward_threshold:g}"
            table.add_row(env_id, threshold, ", ".join(with_preset))
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
        rows.append((f"success (return ≥ {data['success_threshold']:g})",
                     f"{100 * data['success_rate']:.0f}%"))  # fmt: skip
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


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
