"""Tests of the run report: the plot and the Markdown and HTML pages built from a run folder."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from mentor.errors import CheckpointError
from mentor.experiment import Experiment
from mentor.report import report
from mentor.report.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _manifest(**overrides: object) -> dict[str, object]:
    manifest: dict[str, object] = {
        "name": "cartpole-ppo",
        "method": "ppo",
        "env_id": "CartPole-v1",
        "seed": 12345,
        "start": "2025-01-01T10:00:00",
        "stop": "2025-01-01T10:02:05",
        "stop_reason": "plateau",
        "total_steps": 100000,
        "train_seconds": 125.0,
        "versions": {"mentor": "0.1.0", "torch": "2.13.0"},
        "git_commit": None,
        "host": "test-host",
        "target_return": 475.0,
    }
    manifest.update(overrides)
    return manifest


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _write_metrics(run: Path, with_losses: bool = True) -> None:
    header = ["step", "time", "rollout/ep_return_mean", "rollout/ep_return_std", "time/sps"]
    if with_losses:
        header += ["train/loss_policy", "train/loss_value", "train/approx_kl"]
    rows = []
    for i in range(1, 21):
        step = i * 5000
        row: list[object] = [step, i * 6.0, 20.0 * i, 5.0, 800.0]
        if i % 3 == 0:
            row[2:4] = ["", ""]  # not logged at this row
        if with_losses:
            # Value loss far above the policy loss, as in real PPO runs.
            row += [-0.01 * i, 5000.0 / i, 0.01] if i % 2 == 0 else ["", "", ""]
        rows.append(row)
    _write_csv(run / "metrics.csv", header, rows)


VALIDATIONS = [(25000, 100.0, 0.0), (50000, 480.0, 0.9), (75000, 470.5, 0.8)]


def _write_validation(run: Path, validations: list[tuple[int, float, float]] = VALIDATIONS) -> None:
    header = [
        "step", "time", "episodes", "return_mean", "return_std", "return_iqm",
        "return_ci_low", "return_ci_high", "length_mean", "success_rate",
    ]  # fmt: skip
    rows = [
        [step, step / 800, 10, mean, 10.0, mean, mean - 15, mean + 15, mean, rate]
        for step, mean, rate in validations
    ]
    _write_csv(run / "validation.csv", header, rows)


def _png_height(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    # The IHDR chunk follows the signature: length, type, then width and height.
    assert data[12:16] == b"IHDR"
    return struct.unpack(">I", data[20:24])[0]


@pytest.fixture
def full_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps(_manifest()))
    _write_metrics(run)
    _write_validation(run)
    evaluation = {
        "env_id": "CartPole-v1",
        "episodes": 100,
        "return_mean": 490.25,
        "return_std": 12.0,
        "return_iqm": 500.0,
        "return_ci_low": 487.5,
        "return_ci_high": 492.75,
        "return_iqm_ci_low": 499.0,
        "return_iqm_ci_high": 500.0,
        "return_min": 410.0,
        "return_max": 500.0,
        "length_mean": 490.25,
        "success_threshold": 475.0,
        "success_rate": 0.93,
        "confidence": 0.95,
    }
    (run / "evaluation.json").write_text(json.dumps(evaluation))
    return run


def test_full_run_gets_plot_markdown_and_html(full_run: Path) -> None:
    out = write_report(full_run)
    assert out == full_run / "report"
    assert _png_height(out / "learning_curve.png") > 0

    markdown = (out / "report.md").read_text()
    assert "# Run report: cartpole-ppo" in markdown
    assert "| Stop reason | plateau |" in markdown
    assert "| Total steps | 100,000 env steps |" in markdown
    assert "| Training time | 2 min 05 s |" in markdown
    assert "| Seed | 12345 |" in markdown
    # Final validation is the last row; the best is the one at step 50,000.
    assert "| Final return | 470.5 [455.5, 485.5] (75,000 env steps, 10 episodes) |" in markdown
    assert "| Best return | 480 [465, 495] (50,000 env steps, 10 episodes) |" in markdown
    assert "| Mean return, 95% CI | [487.5, 492.8] |" in markdown
    assert "| Success rate | 93.0% |" in markdown
    assert "| torch | 2.13.0 |" in markdown
    assert "![Learning curve](learning_curve.png)" in markdown

    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '<img src="learning_curve.png"' in page
    assert "<td>Stop reason</td><td>plateau</td>" in page
    assert "<style>" in page


def test_text_from_the_run_is_escaped_in_html(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest(name="<b>a|b</b>")))
    out = write_report(tmp_path)
    page = (out / "report.html").read_text()
    assert "&lt;b&gt;a|b&lt;/b&gt;" in page
    assert "<b>" not in page
    assert "| Name | <b>a\\|b</b> |" in (out / "report.md").read_text()


def test_run_with_only_manifest_and_metrics(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps(_manifest(stop_reason=None, stop=None, target_return=None))
    )
    _write_metrics(tmp_path, with_losses=False)
    out = write_report(tmp_path)
    assert _png_height(out / "learning_curve.png") > 0
    markdown = (out / "report.md").read_text()
    assert "| Stop reason | — (not stopped) |" in markdown
    assert "## Validation" not in markdown
    assert "## Final evaluation" not in markdown
    assert "## Learning curve" in markdown
    assert (out / "report.html").is_file()


def test_loss_panel_appears_only_when_losses_are_logged(tmp_path: Path) -> None:
    with_losses, without = tmp_path / "a", tmp_path / "b"
    for run, losses in [(with_losses, True), (without, False)]:
        run.mkdir()
        (run / "manifest.json").write_text(json.dumps(_manifest()))
        _write_metrics(run, with_losses=losses)
    tall = _png_height(write_report(with_losses) / "learning_curve.png")
    short = _png_height(write_report(without) / "learning_curve.png")
    assert tall > short


def test_run_with_only_a_manifest_still_gets_a_report(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "fresh"}))
    out = write_report(str(tmp_path))
    assert _png_height(out / "learning_curve.png") > 0
    assert "# Run report: fresh" in (out / "report.md").read_text()


def test_broken_evaluation_file_is_noted_not_fatal(full_run: Path) -> None:
    (full_run / "evaluation.json").write_text('{"episodes": 10, "return_')
    markdown = (write_report(full_run) / "report.md").read_text()
    assert "evaluation.json could not be read" in markdown
    assert "| Final return |" in markdown


def test_folder_without_manifest_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"manifest\.json"):
        write_report(tmp_path)


# --- The plot's panels ------------------------------------------------------------------------


def _line(ax: Axes, label: str) -> Line2D:
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


def test_training_return_is_carried_over_rows_where_no_episode_ended(full_run: Path) -> None:
    # Every third row of the fixture has no return: no episode ended in that rollout.
    line = _line(report.learning_curve(full_run).axes[0], "training return (mean)")
    steps, values = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert steps.tolist() == [i * 5000 for i in range(1, 21)]
    assert np.isfinite(values).all()
    assert values[2] == values[1] == 40.0  # step 15,000 holds step 10,000's value
    assert values[-1] == 400.0


def test_each_loss_term_has_its_own_linear_axis(full_run: Path) -> None:
    figure = report.learning_curve(full_run)
    _, *losses = figure.axes
    assert [ax.get_title(loc="left") for ax in losses] == ["train/loss_policy", "train/loss_value"]
    for ax in losses:
        assert len(ax.get_lines()) == 1
        # The value loss (250 to 2,500) would flatten the policy loss (-0.2 to -0.02) on a
        # shared axis; alone, each fills its own.
        assert ax.get_yscale() == "linear"
        low, high = ax.get_ylim()
        (line,) = ax.get_lines()
        data = np.asarray(line.get_ydata())
        assert np.ptp(data) > 0.5 * (high - low)


def test_a_loss_term_that_is_zero_throughout_gets_no_panel(full_run: Path) -> None:
    """PPO logs train/loss_entropy as 0.0 on every row when entropy_coef is 0."""
    path = full_run / "metrics.csv"
    rows = list(csv.reader(path.open()))
    _write_csv(path, [*rows[0], "train/loss_entropy"], [[*r, 0.0] for r in rows[1:]])
    _, *losses = report.learning_curve(full_run).axes
    assert [ax.get_title(loc="left") for ax in losses] == ["train/loss_policy", "train/loss_value"]


def _bc_run(run: Path, step_unit: str | None) -> Path:
    run.mkdir()
    manifest = _manifest(method="bc")
    if step_unit is not None:
        manifest["step_unit"] = step_unit
    (run / "manifest.json").write_text(json.dumps(manifest))
    header = ["step", "time", "train/loss", "train/val_loss", "train/best_val_loss"]
    rows = [[i * 32, i * 0.1, 5.0 / i**2, 4.0 / i**2 + 0.01, 4.0 / i**2] for i in range(1, 31)]
    _write_csv(run / "metrics.csv", header, rows)
    _write_validation(run, [(960, 500.0, 1.0)])
    return run


def test_validation_loss_shares_the_panel_of_its_training_loss(tmp_path: Path) -> None:
    _, loss = report.learning_curve(_bc_run(tmp_path / "bc", "gradient steps")).axes
    assert loss.get_title(loc="left") == "train/loss"
    labels = [line.get_label() for line in loss.get_lines()]
    assert labels == ["training", "validation", "best validation"]
    # From 5 down to 0.0056: a log axis, not a symlog one unreadable near zero.
    assert loss.get_yscale() == "log"


@pytest.mark.parametrize("with_losses", [True, False])
def test_legends_hide_no_data_beside_a_single_validation(tmp_path: Path, with_losses: bool) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    _write_metrics(tmp_path, with_losses=with_losses)
    _write_validation(tmp_path, [(50000, 480.0, 0.9)])
    figure = report.learning_curve(tmp_path)
    figure.draw_without_rendering()
    legends = [(ax, ax.get_legend()) for ax in figure.axes if ax.get_legend() is not None]
    assert legends
    for ax, legend in legends:
        assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    point = _line(figure.axes[0], "validation return (mean)")
    assert point.get_marker() == "o" and list(point.get_xdata()) == [50000]


@pytest.mark.parametrize(
    ("step_unit", "label"),
    [(None, "env steps"), ("env steps", "env steps"), ("gradient steps", "gradient steps")],
)
def test_step_axis_and_text_name_the_step_unit(
    tmp_path: Path, step_unit: str | None, label: str
) -> None:
    run = _bc_run(tmp_path / "run", step_unit)
    assert report.learning_curve(run).axes[-1].get_xlabel() == label
    markdown = (write_report(run) / "report.md").read_text()
    assert f"| Total steps | 100,000 {label} |" in markdown
    assert f"| Final return | 500 [485, 515] (960 {label}, 10 episodes) |" in markdown
    assert "environment steps" not in markdown


# --- Hyperparameters ---------------------------------------------------------------------------


def test_report_lists_hyperparameters_and_links_the_experiment(full_run: Path) -> None:
    experiment = Experiment.model_validate(
        {"method": {"name": "ppo", "gamma": 0.98}, "env": {"num_envs": 4}, "seed": 3}
    )
    (full_run / "experiment.yaml").write_text(experiment.to_yaml())
    out = write_report(full_run)
    markdown = (out / "report.md").read_text()
    assert "## Hyperparameters" in markdown
    assert "| method.gamma | 0.98 (default: 0.99) |" in markdown
    assert "| method.clip_coef | 0.2 |" in markdown  # the method's settings are all listed
    assert "| env.num_envs | 4 (default: 8) |" in markdown
    assert "| seed | 3 (default: 0) |" in markdown
    assert "| env.id |" not in markdown  # the other sections' defaults are left out
    assert "[experiment.yaml](../experiment.yaml)" in markdown
    assert (out / "../experiment.yaml").is_file()

    page = (out / "report.html").read_text()
    assert "<td>method.gamma</td><td>0.98 (default: 0.99)</td>" in page
    assert '<a href="../experiment.yaml">experiment.yaml</a>' in page


def test_schedule_where_the_default_is_a_number_is_one_setting(full_run: Path) -> None:
    schedule = {"kind": "linear", "start": 0.003, "end": 0.0}
    experiment = Experiment.model_validate({"method": {"learning_rate": schedule}})
    (full_run / "experiment.yaml").write_text(experiment.to_yaml())
    markdown = (write_report(full_run) / "report.md").read_text()
    assert (
        "| method.learning_rate | {kind: linear, start: 0.003, end: 0.0, fraction: 1.0} "
        "(default: 0.0003) |" in markdown
    )


def test_broken_experiment_file_is_noted_and_still_linked(full_run: Path) -> None:
    (full_run / "experiment.yaml").write_text("method: {name: ppo\n")
    markdown = (write_report(full_run) / "report.md").read_text()
    assert "experiment.yaml could not be read" in markdown
    assert "[experiment.yaml](../experiment.yaml)" in markdown
    assert "| Final return |" in markdown


def test_unknown_method_lists_its_settings_without_defaults(full_run: Path) -> None:
    (full_run / "experiment.yaml").write_text("method: {name: newmethod, lr: 0.1}\nseed: 3\n")
    markdown = (write_report(full_run) / "report.md").read_text()
    assert "| method.lr | 0.1 |" in markdown
    assert "no defaults for method newmethod" in markdown
