"""``mentor tune``: an Optuna study over an experiment's ``tune:`` section.

Optuna samples and prunes; mentor makes each trial a set of seeded, ordinary runs and scores it
the same way every time:

    sample    Optuna's sampler (tune.sampler) gives the trial's values (``space.suggest``)
    train     one run per seed of tune.seeds, each a normal run folder under
              ``<folder>/trials/<number>/seed-<seed>``; each validation is reported to Optuna
              (step = seed index x budget + step) and its pruner may stop the run, through the
              session's stop-rule seam
    score     per seed, tune.metric: ``auc`` (the mean validation return over the budget, the
              last validation held after an early stop) or ``final`` (the final evaluation's
              IQM); the trial's value is the IQM over seeds
    recheck   at the end, the tune.top_k best trials train again on tune.recheck_seeds, seeds
              the search never saw; ``best.yaml`` is the winner there, ``best.json`` its
              re-evaluation (IQM and a 95% bootstrap CI over the fresh seeds)

A trial is bitwise reproducible on a CPU: its values and seeds fix every run. The study lives in
an Optuna storage, SQLite in the folder by default (``study.db``, WAL journal, so several
``mentor tune`` processes on one machine can share it and ``optuna-dashboard`` can read it), or
any Optuna storage URL. Running again resumes: finished trials stay, and a trial whose process
was killed stops beating (Optuna's heartbeat) and is re-queued with its values (FAULT-18). A
trial that raises (an env error, NaN in training), scores NaN, or has values the experiment
refuses (a ``ConfigError``) is failed with its reason in the trial's ``error`` attribute, and the
study goes on (FAULT-37).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentor.errors import ConfigError
from mentor.evaluation.statistics import bootstrap_ci, iqm
from mentor.experiment import Experiment, load_yaml
from mentor.runs.stopping import Progress
from mentor.tune.space import TuneConfig, check_space, split_tune, suggest, trial_experiment

SPACE_ATTR = "mentor_space"  # the study's user attribute holding the space and experiment


@dataclass
class TuneResult:
    """Where a study is after ``tune``: its folder, its best trial by the search's score, and
    the re-check's winner (None while no re-check ran)."""

    folder: Path
    study_name: str
    storage: str
    best_trial: int | None
    best_value: float | None
    best_yaml: Path | None
    recheck: list[dict[str, Any]]


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError as exc:
        from mentor.envs.resolve import missing_package

        raise missing_package("mentor tune", exc) from None
    import warnings

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # mentor says what each trial did
    # The heartbeat and its retry callback are marked experimental; mentor relies on them.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


# --- storage, sampler, pruner ----------------------------------------------------------------


def default_storage(folder: Path) -> str:
    """``sqlite:///<folder>/study.db``, its journal in WAL mode (readers never block the writer;
    several processes take turns writing)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / "study.db").resolve()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")  # kept in the file from now on
    return f"sqlite:///{path}"


def open_storage(url: str, heartbeat_seconds: int) -> Any:
    """An Optuna storage for ``url`` with a heartbeat: a trial whose process stops beating for
    three beats (or died before its first) is failed and re-queued with its values (Optuna's
    stale-trial callback)."""
    optuna = optuna_module()
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
    try:
        if url.startswith(("sqlite", "postgresql", "mysql")):
            connect = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
            from mentor.tune.storage import HeartbeatStorage

            return HeartbeatStorage(
                url,
                engine_kwargs=connect,
                heartbeat_interval=heartbeat_seconds,
                grace_period=3 * heartbeat_seconds,
                heartbeat_stale_trial_callback=retry,
            )
        return optuna.storages.get_storage(url)
    except Exception as exc:  # SQLAlchemy's and the drivers' errors: say which URL and why
        raise ConfigError(f"--storage '{url}' cannot be opened: {exc}".splitlines()[0]) from None


def make_sampler(tune: TuneConfig) -> Any:
    samplers = optuna_module().samplers
    seed, startup = tune.sampler_seed, tune.startup_trials
    if tune.sampler == "tpe":
        return samplers.TPESampler(seed=seed, n_startup_trials=startup)
    if tune.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if tune.sampler == "cmaes":
        return samplers.CmaEsSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False
        )
    return samplers.GPSampler(seed=seed, n_startup_trials=startup)


def make_pruner(tune: TuneConfig, experiment: Experiment) -> Any:
    pruners = optuna_module().pruners
    budget = len(tune.seeds) * experiment.stopping.total_steps
    every = experiment.validation.every_steps
    if tune.pruner == "median":
        # Never on a trial's first two validations: one validation's few episodes are noisy.
        return pruners.MedianPruner(
            n_startup_trials=tune.startup_trials, n_warmup_steps=2 * every - 1
        )
    if tune.pruner == "halving":
        return pruners.SuccessiveHalvingPruner(min_resource=every)
    if tune.pruner == "hyperband":
        return pruners.HyperbandPruner(min_resource=every, max_resource=budget)
    return pruners.NopPruner()


# --- scores ------------------------------------------------------------------------------------


def curve_auc(validations: list[dict[str, Any]], budget: int) -> float:
    """The mean validation return from the first validation to the budget, each validation's
    return held until the next and the last one to the budget (a run stopped early at its
    target keeps its return): learning early and steadily scores high. NaN without one."""
    points = sorted((int(v["step"]), float(v["return_mean"])) for v in validations)
    if not points:
        return float("nan")
    start = points[0][0]
    end = max(budget, points[-1][0])
    if end == start:
        return points[-1][1]
    area = 0.0
    for (step, value), (following, _) in zip(points, [*points[1:], (end, 0.0)], strict=True):
        area += value * (following - step)
    return area / (end - start)


def run_score(result: Any, metric: str, budget: int) -> float:
    """One run's score (``tune.metric``)."""
    if metric == "final":
        evaluation = result.evaluation
        return float("nan") if evaluation is None else float(evaluation.return_iqm)
    return curve_auc(result.validations, budget)


class PruneOnValidation:
    """A stop rule: report each validation of seed ``index`` to the trial (its running score,
    the mean validation return so far) and stop the run when Optuna's pruner says so."""

    def __init__(self, trial: Any, index: int, budget: int) -> None:
        self.trial, self.offset = trial, index * budget
        self.pruned: str | None = None

    def __call__(self, progress: Progress) -> str | None:
        validation = progress.validation
        if validation is None:
            return None
        value = sum(validation.history) / len(validation.history)
        if not math.isfinite(value):
            return None
        self.trial.report(value, self.offset + progress.step)
        if self.trial.should_prune():
            self.pruned = f"pruned by Optuna at step {progress.step:,} (running score {value:.2f})"
            return self.pruned
        return None


# --- the study -------------------------------------------------------------------------------


@dataclass
class Study:
    """A study's settings as one object: what each trial needs."""

    base: dict[str, Any]  # the experiment file's data, without its tune section
    tune: TuneConfig
    experiment: Experiment  # the base, validated
    folder: Path
    source: str
    say: Callable[[str], None]

    checked_envs: bool = False  # the env passed its preflight in this process

    def seed_run(self, values: dict[str, Any], seed: int, output_dir: Path) -> Experiment:
        """One seed's run of a trial. What its score does not read is left out: the final
        evaluation under the auc metric, and the env's preflight rollout once the env passed
        it in this process (unless the space tunes the env)."""
        fixed: dict[str, Any] = {"logging.progress": False}
        if self.tune.metric == "auc":
            fixed["evaluation.episodes"] = 0
        if self.checked_envs and not any(path.startswith("env.") for path in self.tune.space):
            fixed["env.preflight"] = False
        return trial_experiment(
            self.base, values, self.source, seed=seed, output_dir=str(output_dir),
            name=f"seed-{seed}", **fixed,
        )  # fmt: skip

    def train_seeds(
        self, values: dict[str, Any], seeds: list[int], output_dir: Path, trial: Any = None
    ) -> tuple[list[float], float, float]:
        """Train once per seed; (the scores, the seconds of training, the seconds of the runs
        whole: setup, validation and final evaluation included). With ``trial``, each
        validation is reported and a pruned run raises ``optuna.TrialPruned``, and the seconds
        spent validating are the trial's ``validation_seconds``."""
        from mentor import api

        budget = self.experiment.stopping.total_steps
        scores, train_seconds, run_seconds, validation_seconds = [], 0.0, 0.0, 0.0
        for index, seed in enumerate(seeds):
            experiment = self.seed_run(values, seed, output_dir)
            rule = None if trial is None else PruneOnValidation(trial, index, budget)
            tic = time.perf_counter()
            result = api.train(
                experiment, overwrite=True, stop_rules=[] if rule is None else [rule]
            )
            run_seconds += time.perf_counter() - tic
            self.checked_envs = True
            train_seconds += result.train_seconds
            validation_seconds += result.validation_seconds
            if trial is not None:
                trial.set_user_attr("validation_seconds", validation_seconds)
            if result.stop_reason.startswith("interrupted"):
                raise KeyboardInterrupt(result.stop_reason)
            if rule is not None and rule.pruned:
                trial.set_user_attr("train_seconds", train_seconds)
                trial.set_user_attr("run_seconds", run_seconds)
                raise optuna_module().TrialPruned(rule.pruned)
            scores.append(run_score(result, self.tune.metric, budget))
        return scores, train_seconds, run_seconds

    def objective(self, trial: Any) -> float:
        tic = time.perf_counter()
        values = suggest(trial, self.tune, self.experiment)
        trial.set_user_attr("values", values)
        output = self.folder / "trials" / f"{trial.number:04d}"
        try:
            scores, train_seconds, run_seconds = self.train_seeds(
                values, self.tune.seeds, output, trial
            )
        except KeyboardInterrupt:
            trial.set_user_attr("error", "interrupted (Ctrl-C or SIGTERM): re-queued on resume")
            trial.set_user_attr("interrupted", True)
            raise
        except optuna_module().TrialPruned as exc:
            trial.set_user_attr("error", str(exc))
            raise
        except Exception as exc:  # refused values, an env error, NaN in training: FAULT-37
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise
        finally:
            trial.set_user_attr("wall_seconds", time.perf_counter() - tic)
        trial.set_user_attr("scores", scores)
        trial.set_user_attr("train_seconds", train_seconds)
        trial.set_user_attr("run_seconds", run_seconds)
        value = iqm(scores)
        if not math.isfinite(value):
            trial.set_user_attr("error", f"the score is {value} (scores per seed: {scores})")
        return value


def load_study_file(file: str | Path) -> tuple[dict[str, Any], TuneConfig, Experiment]:
    """An experiment file with a tune section: (its data without it, the section, the base
    experiment), the space checked against the experiment before any trial."""
    source = str(file)
    data = load_yaml(file)
    base, tune = split_tune(data, source)
    return base, tune, check_space(base, tune, source)


def tune(
    file: str | Path,
    *,
    name: str | None = None,
    folder: str | Path | None = None,
    storage: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    recheck: bool = True,
    workers: int | None = None,
    address: str | None = None,
    say: Callable[[str], None] = print,
) -> TuneResult:
    """Run (or resume) the study of ``file``'s tune section; see the module docstring.

    ``trials`` (default tune.trials) counts the study's complete and pruned trials, whoever ran
    them, so several processes on one storage stop together; ``timeout`` (default tune.timeout)
    is the seconds of searching, the re-check after it not included. With ``workers``, that many
    Ray tasks search side by side on one storage (``address``: a cluster's, whose nodes must all
    reach the storage: a database URL, not a SQLite file), and this process re-checks."""
    optuna = optuna_module()
    base, tune_cfg, experiment = load_study_file(file)
    name = name or Path(file).stem.removeprefix("tune-")
    folder = (Path(folder) if folder is not None else Path("tunes") / name).resolve()
    url = storage or default_storage(folder)
    if address is not None and url.startswith("sqlite"):
        raise ConfigError(
            f"--address: the study's storage is a SQLite file ({url}), which the nodes of a "
            "cluster cannot share: give --storage a database URL (postgresql://...)"
        )
    claim_folder(folder, name, url)
    study = _open_study(name, url, tune_cfg, experiment)
    _check_same_space(study, base, tune_cfg, url)
    _requeue_interrupted(study)
    runner = Study(base, tune_cfg, experiment, folder, str(file), say)
    total = trials if trials is not None else tune_cfg.trials
    states = _counted(optuna)
    done = len(study.get_trials(deepcopy=False, states=states))
    say(f"study '{name}' in {url}: {done} trials finished" + (f", {total} wanted" if total else ""))
    seconds = timeout if timeout is not None else tune_cfg.timeout
    if workers is None:
        _search(study, runner, total, seconds)
    else:
        _search_on_ray(workers, address, (str(Path(file).resolve()), name, str(folder), url,
                                          total, seconds), say)  # fmt: skip
    write_trials_table(study, folder)
    rechecked: list[dict[str, Any]] = []
    best_yaml = None
    if recheck and tune_cfg.top_k > 0:
        rechecked, best_yaml = run_recheck(study, runner)
    _write_report(folder, url, say)
    best = _best(study)
    return TuneResult(
        folder, name, url, None if best is None else best.number,
        None if best is None else best.value, best_yaml, rechecked,
    )  # fmt: skip


def _counted(optuna: Any) -> tuple[Any, ...]:
    """Trials that count toward the total: a failed one (killed, refused values) is retried or
    replaced, and each process runs at most `total - done` more."""
    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _open_study(name: str, url: str, tune: TuneConfig, experiment: Experiment) -> Any:
    return optuna_module().create_study(
        storage=open_storage(url, tune.heartbeat_seconds), sampler=make_sampler(tune),
        pruner=make_pruner(tune, experiment), study_name=name, direction="maximize",
        load_if_exists=True,
    )  # fmt: skip


def _search(study: Any, runner: Study, total: int | None, seconds: float | None) -> None:
    """Trials in this process until the study has ``total`` or ``seconds`` have passed."""
    optuna = optuna_module()
    states = _counted(optuna)
    done = len(study.get_trials(deepcopy=False, states=states))
    callbacks = [_announce(runner.say, runner.folder)]
    if total is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(total, states=states))
    if total is None or done < total:
        study.optimize(
            runner.objective, n_trials=None if total is None else total - done,
            timeout=seconds, catch=(Exception,), callbacks=callbacks,
        )  # fmt: skip


def search_worker(
    file: str, name: str, folder: str, url: str, total: int | None, seconds: float | None
) -> int:
    """One Ray task's share of a study: the trials it finished."""
    base, tune_cfg, experiment = load_study_file(file)
    study = _open_study(name, url, tune_cfg, experiment)
    runner = Study(base, tune_cfg, experiment, Path(folder), file, lambda line: None)
    before = len(study.get_trials(deepcopy=False))
    _search(study, runner, total, seconds)
    return len(study.get_trials(deepcopy=False)) - before


def _search_on_ray(workers: int, address: str | None, args: tuple, say: Callable) -> None:
    """``workers`` Ray tasks search the same study (Optuna's storage coordinates them)."""
    from mentor.distributed.rollouts import connect, ray_module

    connect(workers, address)
    ray = ray_module()
    task = ray.remote(num_cpus=1, max_retries=0)(search_worker)
    say(f"{workers} Ray tasks search the study side by side")
    counts = ray.get([task.remote(*args) for _ in range(workers)])
    say(f"the Ray tasks ran {sum(counts)} trials ({', '.join(map(str, counts))})")


def claim_folder(folder: Path, name: str, url: str) -> None:
    """A tuning folder holds one study's trials: another study is refused there."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "study.json"
    if marker.exists():
        held = json.loads(marker.read_text())
        if held.get("name") != name:
            raise ConfigError(
                f"tuning folder '{folder}' holds the trials of study '{held.get('name')}', not "
                f"'{name}': give another --folder (or --name {held.get('name')} to resume it)"
            )
    else:
        write_json(marker, {"name": name, "storage": url})


def _write_report(folder: Path, url: str, say: Callable[[str], None]) -> None:
    """The report of the study as it stands (``mentor tune-report``'s), without its console."""
    from mentor.tune.report import write_tune_report

    try:
        page = write_tune_report(folder, storage=url)
    except Exception as exc:  # a report is a view: its failure does not undo the study
        say(f"report not written: {exc}")
        return
    say(f"report: {page}")


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no complete trial
        return None


def _check_same_space(study: Any, base: dict[str, Any], tune: TuneConfig, url: str) -> None:
    """A study keeps the space and experiment it was made with: another is refused (its trials'
    scores would not compare)."""
    mine = json.dumps(
        {"experiment": base, "space": tune.model_dump(mode="json")["space"],
         "seeds": tune.seeds, "metric": tune.metric},
        sort_keys=True, default=str,
    )  # fmt: skip
    theirs = study.user_attrs.get(SPACE_ATTR)
    if theirs is None:
        study.set_user_attr(SPACE_ATTR, mine)
    elif theirs != mine:
        raise ConfigError(
            f"study '{study.study_name}' in {url} was made with another experiment, search "
            "space, seeds or metric than this file's, so their trials would not compare: give "
            "--name NEW for a new study (the old one stays), or the file it was made with"
        )


def _requeue_interrupted(study: Any) -> None:
    """Trials stopped by Ctrl-C or SIGTERM go back in the queue with their values, once."""
    requeued = set(study.user_attrs.get("requeued", []))
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get("interrupted") and trial.number not in requeued:
            study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})
            requeued.add(trial.number)
    study.set_user_attr("requeued", sorted(requeued))


def _announce(say: Callable[[str], None], folder: Path) -> Callable[[Any, Any], None]:
    def after_trial(study: Any, trial: Any) -> None:
        state = trial.state.name.lower()
        value = "" if trial.value is None else f" score {trial.value:.2f}"
        if state != "complete":  # a pruned trial's value is its last report, not a score
            value = ""
        why = trial.user_attrs.get("error", "")
        best = _best(study)
        lead = "" if best is None else f" (best {best.value:.2f}, trial {best.number})"
        say(
            f"trial {trial.number} {state}{value}{lead} {trial.params}"
            + (f": {why}" if why else "")
        )
        write_trials_table(study, folder)

    return after_trial


def write_trials_table(study: Any, folder: Path) -> Path:
    """``trials.csv``: one row per trial, its state, score, seconds, values and any error."""
    import csv

    trials = study.get_trials(deepcopy=False)
    names = sorted({key for trial in trials for key in trial.params})
    path = folder / "trials.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([
            "number", "state", "score", "train_seconds", "validation_seconds", "run_seconds",
            "wall_seconds",
            "start", "end", *names, "error",
        ])  # fmt: skip
        for trial in trials:
            attrs = trial.user_attrs
            score = trial.value if trial.state.name == "COMPLETE" else ""  # pruned: a report
            writer.writerow([
                trial.number, trial.state.name, score,
                attrs.get("train_seconds", ""), attrs.get("validation_seconds", ""),
                attrs.get("run_seconds", ""),
                attrs.get("wall_seconds", ""), _iso(trial.datetime_start),
                _iso(trial.datetime_complete),
                *(trial.params.get(name, "") for name in names), attrs.get("error", ""),
            ])  # fmt: skip
    return path


def _iso(moment: Any) -> str:
    return "" if moment is None else moment.isoformat()


# --- the re-check ------------------------------------------------------------------------------


def run_recheck(study: Any, runner: Study) -> tuple[list[dict[str, Any]], Path | None]:
    """The top_k complete trials trained again on the fresh seeds; best.yaml is the winner."""
    optuna = optuna_module()
    tune = runner.tune
    complete = [
        t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]  # fmt: skip
    top = sorted(complete, key=lambda t: t.value, reverse=True)[: tune.top_k]
    if not top:
        runner.say("no complete trial to re-check")
        return [], None
    path = runner.folder / "recheck.json"
    known = {row["trial"]: row for row in read_json(path, [])}
    rows = []
    for trial in top:
        row = known.get(trial.number)
        if row is None or row.get("seeds") != tune.recheck_seeds:
            runner.say(f"re-checking trial {trial.number} on seeds {tune.recheck_seeds}")
            output = runner.folder / "recheck" / f"{trial.number:04d}"
            values = trial.user_attrs["values"]
            scores, seconds, _ = runner.train_seeds(values, tune.recheck_seeds, output)
            low, high = _ci(scores)
            row = {
                "trial": trial.number, "values": values, "search_score": trial.value,
                "seeds": tune.recheck_seeds, "scores": scores, "iqm": iqm(scores),
                "ci": [low, high], "train_seconds": seconds,
            }  # fmt: skip
        rows.append(row)
        write_json(path, rows)
    finite = [row for row in rows if row["iqm"] is not None and math.isfinite(row["iqm"])]
    if not finite:
        runner.say("no re-checked trial has a finite score: no best.yaml")
        return rows, None
    winner = max(finite, key=lambda row: row["iqm"])
    best = trial_experiment(
        runner.base, winner["values"], runner.source, name=f"{runner.folder.name}-best"
    )
    best_yaml = runner.folder / "best.yaml"
    best_yaml.write_text(best.to_yaml())
    write_json(runner.folder / "best.json", {**winner, "metric": tune.metric})
    runner.say(
        f"best: trial {winner['trial']}, {tune.metric} IQM {winner['iqm']:.2f} "
        f"[{winner['ci'][0]:.2f}, {winner['ci'][1]:.2f}] on {len(winner['scores'])} fresh seeds "
        f"(search score {winner['search_score']:.2f}): {best_yaml}"
    )
    return rows, best_yaml


def _ci(scores: list[float]) -> tuple[float, float]:
    finite = [s for s in scores if math.isfinite(s)]
    if len(finite) < 2:
        return (float("nan"), float("nan"))
    return bootstrap_ci([finite], statistic=iqm)


def read_json(path: Path, default: Any) -> Any:
    """A JSON file of the tuning folder, or ``default`` where it is missing."""
    return json.loads(path.read_text()) if path.is_file() else default


def write_json(path: Path, data: Any) -> None:
    """Strict JSON, written atomically: NaN and infinities (a score that failed) as null."""
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(_finite(data), indent=2, allow_nan=False))
    os.replace(staged, path)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
