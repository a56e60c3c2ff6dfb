"""mentor tune --pbt (issue 13, part 6): population-based training on mentor's exact checkpoints."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from mentor.errors import ConfigError
from mentor.tune.pbt import explore, mutable, run_pbt
from mentor.tune.space import TuneConfig

BASE = {
    "method": {"name": "ppo", "num_steps": 32, "num_minibatches": 2},
    "env": {"id": "CartPole-v1", "num_envs": 4},
    "stopping": {"total_steps": 2048},
    "validation": {"every_steps": 512, "episodes": 4, "num_envs": 2},
    "evaluation": {"episodes": 4},
    "logging": {"tensorboard": False},
}
SPACE = {
    "method.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]},
    "method.clip_coef": {"uniform": [0.1, 0.3]},
    "agent.network.hidden_sizes": {"depth": [1, 2], "width": [16, 32]},
}


def pbt_file(tmp_path: Path, space=None, **pbt) -> Path:
    config = {"population": 4, "interval_steps": 1024, "quantile": 0.25, **pbt}
    path = tmp_path / "tune-pop.yaml"
    path.write_text(yaml.safe_dump({**BASE, "tune": {"seeds": [0], "pbt": config,
                                                     "space": space or SPACE}}))  # fmt: skip
    return path


def test_only_floats_of_the_method_and_exploration_are_perturbed() -> None:
    tune = TuneConfig.model_validate({"space": SPACE, "pbt": {"resample_probability": 0.0}})
    assert mutable(tune.space) == ["method.learning_rate", "method.clip_coef"]
    values = {
        "method.learning_rate": 1e-3,
        "method.clip_coef": 0.29,
        "agent.network.hidden_sizes": [16],
    }
    rng = random.Random(0)
    for _ in range(20):
        out = explore(values, tune, rng)
        assert out["agent.network.hidden_sizes"] == [16]  # travels with the weights
        assert out["method.learning_rate"] in (pytest.approx(8e-4), pytest.approx(1.2e-3))
        assert out["method.clip_coef"] in (pytest.approx(0.232), 0.3)  # 0.348 clipped to 0.3
    tune = TuneConfig.model_validate({"space": SPACE, "pbt": {"resample_probability": 1.0}})
    for _ in range(20):
        out = explore(values, tune, rng)
        assert 1e-4 <= out["method.learning_rate"] <= 1e-2 and 0.1 <= out["method.clip_coef"] <= 0.3


def test_a_population_exploits_explores_and_records_its_lineage(tmp_path) -> None:
    path = pbt_file(tmp_path)
    folder = tmp_path / "t"
    best = run_pbt(path, folder=folder, name="t", say=lambda line: None)
    pbt = folder / "pbt"
    lineage = json.loads((pbt / "lineage.json").read_text())
    assert [row["generation"] for row in lineage] == [0] * 4 + [1] * 4
    first = {row["member"]: row for row in lineage if row["generation"] == 0}
    second = {row["member"]: row for row in lineage if row["generation"] == 1}
    copied = [row for row in second.values() if row["parent"] is not None]
    assert len(copied) == 1  # the bottom quarter of 4: one member
    loser = copied[0]
    winner = first[loser["parent"]]
    assert first[loser["member"]]["score"] <= min(r["score"] for r in first.values()) + 1e-9
    assert winner["score"] == max(r["score"] for r in first.values())
    assert (
        loser["values"]["agent.network.hidden_sizes"]
        == winner["values"]["agent.network.hidden_sizes"]
    )
    assert loser["values"]["method.learning_rate"] != winner["values"]["method.learning_rate"]
    # The loser's run went on from the winner's checkpoint: its experiment is the winner's
    # architecture and seed, resumed with the perturbed values.
    experiment = yaml.safe_load((pbt / f"member-{loser['member']}" / "experiment.yaml").read_text())
    assert experiment["seed"] == winner["seed"]
    assert experiment["method"]["learning_rate"] == pytest.approx(
        loser["values"]["method.learning_rate"]
    )
    assert best["member"] == max(second.values(), key=lambda r: r["score"])["member"]
    assert (pbt / "lineage.png").stat().st_size > 0
    assert best["history"][-1]["member"] == best["member"]


def test_a_population_run_again_goes_on_from_its_last_interval_and_ends_the_same(tmp_path) -> None:
    """The second interval is forgotten (as if the process died after the members trained it
    but before the lineage was written): running again scores the members where they are, and
    the lineage comes out as the first time."""
    path = pbt_file(tmp_path, population=3)
    folder = tmp_path / "t"
    run_pbt(path, folder=folder, name="t", say=lambda line: None)
    pbt = folder / "pbt"
    whole = json.loads((pbt / "lineage.json").read_text())
    (pbt / "lineage.json").write_text(json.dumps([r for r in whole if r["generation"] == 0]))
    run_pbt(path, folder=folder, name="t", say=lambda line: None)
    assert json.loads((pbt / "lineage.json").read_text()) == whole


def test_pbt_refuses_what_it_cannot_run(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"interval_steps=4,096 is above stopping\.total_steps"):
        run_pbt(pbt_file(tmp_path, interval_steps=4096), folder=tmp_path / "a", name="a")
    space = {"agent.network.activation": {"choice": ["tanh", "relu"]}}
    with pytest.raises(ConfigError, match="perturbs floats of the method and exploration"):
        run_pbt(pbt_file(tmp_path, space=space), folder=tmp_path / "b", name="b")
