"""Metrics out: a wide CSV, TensorBoard events and a live progress bar."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class CsvLog:
    """One row per call with a fixed set of columns. A key first seen later rewrites the file with
    the wider header, so every column stays aligned (a rare event: the keys are the same each
    update)."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.file = None
        self.writer: csv.DictWriter | None = None
        if resume_step is not None and path.is_file():
            self._keep_until(resume_step)

    def _keep_until(self, step: int) -> None:
        """Resuming from ``step``: the rows up to it stay, later ones (written after that
        checkpoint by the run that was stopped) go, since the resumed run writes them again."""
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            self.columns = list(reader.fieldnames or [])
            for row in reader:
                try:
                    if int(row["step"]) > step:
                        break
                except (KeyError, TypeError, ValueError):  # a line cut short by a kill
                    break
                self.rows.append(row)
        self._rewrite()

    @property
    def last_time(self) -> float:
        try:
            return float(self.rows[-1]["time"]) if self.rows else 0.0
        except (KeyError, ValueError):
            return 0.0

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.writer is None or any(key not in self.columns for key in row):
            self.columns += [key for key in row if key not in self.columns]
            self._rewrite()
        else:
            self.writer.writerow(row)
        self.file.flush()

    def _rewrite(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = open(self.path, "w", newline="")  # noqa: SIM115 (kept open between rows)
        self.writer = csv.DictWriter(self.file, self.columns, restval="")
        self.writer.writeheader()
        self.writer.writerows(self.rows)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class MetricsLogger:
    """Logs namespaced metrics (``rollout/ep_return_mean``, ``train/approx_kl``, ``time/sps``).
    The progress bar counts ``progress_unit`` up to ``total`` (steps, unless told otherwise) and
    shows ``time/sps`` as ``rate_unit`` per second."""

    def __init__(
        self,
        run_dir: Path,
        total: int,
        csv_on: bool,
        tensorboard: bool,
        progress: bool,
        resume_step: int | None = None,
        progress_unit: str = "steps",
        rate_unit: str = "steps",
    ) -> None:
        self.metrics = CsvLog(run_dir / "metrics.csv", resume_step) if csv_on else None
        self.validation = CsvLog(run_dir / "validation.csv", resume_step)
        # The time column goes on from where the resumed run's rows stop.
        self.start = time.perf_counter() - (self.metrics.last_time if self.metrics else 0.0)
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when asked

            # TensorBoard hides the stopped run's events after the checkpoint's step.
            purge = None if resume_step is None else resume_step + 1
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge)
        self.progress = None
        self.last_return = float("nan")
        if progress:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {progress_unit}"),
                TextColumn(f"{{task.fields[sps]:,.0f}} {rate_unit}/s"),
                TextColumn("return {task.fields[ret]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            # A resumed run's bar starts where it was (counted in steps: where it counts
            # something else, the method's first row moves it).
            start = resume_step if resume_step is not None and progress_unit == rate_unit else 0
            self.task = self.progress.add_task(
                "training", total=total, completed=start, sps=0.0, ret="-"
            )
            self.progress.start()

    def log(self, step: int, metrics: dict[str, float], progress: float | None = None) -> None:
        elapsed = time.perf_counter() - self.start
        if self.metrics is not None:
            self.metrics.write({"step": step, "time": round(elapsed, 3), **_rounded(metrics)})
        self._tensorboard(step, metrics)
        if self.progress is not None:
            ret = metrics.get("rollout/ep_return_mean")
            if ret is not None and math.isfinite(ret):
                self.last_return = ret
            shown = "-" if math.isnan(self.last_return) else f"{self.last_return:.1f}"
            self.progress.update(
                self.task,
                completed=step if progress is None else progress,
                sps=metrics.get("time/sps", 0.0),
                ret=shown,
            )

    def log_validation(self, step: int, summary: dict[str, Any]) -> None:
        """One row of validation.csv (and ``eval/`` scalars) from ``EvalSummary.to_dict()``:
        the return's summary, the mean of each declared info key as ``<key>_mean``, and, for a
        multi-agent env, each agent's mean return as ``return_<agent>_mean``; a staged
        curriculum's ``stage_return_mean`` and ``stage_success_rate``."""
        elapsed = time.perf_counter() - self.start
        keys = ("episodes", "return_mean", "return_std", "return_iqm", "return_ci_low",
                "return_ci_high", "length_mean", "success_rate")  # fmt: skip
        row = {"step": step, "time": round(elapsed, 3), **{k: summary.get(k) for k in keys}}
        row.update({f"{key}_mean": mean for key, mean in (summary.get("info") or {}).items()})
        agents = summary.get("agents") or {}
        row.update({f"return_{name}_mean": own["return_mean"] for name, own in agents.items()})
        # A staged curriculum's validation on its current stage, beside the last stage's.
        row.update(
            {k: summary[k] for k in ("stage_return_mean", "stage_success_rate") if k in summary}
        )
        self.validation.write(row)
        self._tensorboard(
            step, {f"eval/{k}": v for k, v in row.items() if k not in ("step", "time")}
        )

    def _tensorboard(self, step: int, metrics: dict[str, Any]) -> None:
        if self.tb is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float) and value is not None:
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        for log in (self.metrics, self.validation):
            if log is not None:
                log.close()
        if self.tb is not None:
            self.tb.close()


@contextmanager
def counting(
    description: str, total: int, unit: str, enabled: bool
) -> Iterator[Callable[[], None]]:
    """A progress bar for a long piece of work that is not training (the final evaluation):
    yields the function to call once per item done. Nothing is shown when not ``enabled``."""
    if not enabled:
        yield lambda: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"),
        TimeElapsedColumn(),
        transient=True,
    )
    task = bar.add_task(description, total=total)
    with bar:
        yield lambda: bar.advance(task)


def status(message: str, enabled: bool = True) -> None:
    """One line saying what a run is doing before its progress bar starts. On stdout, with the
    progress bar: stderr is for what went wrong (one line, from the CLI)."""
    if enabled:
        print(message, flush=True)


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}
