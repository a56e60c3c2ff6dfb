"""Training on Ray (issue 14, on-policy part): rollout workers collect, the learner updates.

One local Ray serves the module (started by the first run, stopped at the end): starting one
costs seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.errors import ConfigError, EnvError, EnvWorkerError, MissingPackageError
from mentor.experiment import build
from mentor.experiment.schema import DistributedConfig

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    yield
    ray.shutdown()


def quick(tmp_path, name: str, *extra: str, env_id: str = "CartPole-v1"):
    return build(method="ppo", env_id=env_id, overrides=[
        f"output_dir={tmp_path}", f"name={name}", "env.num_envs=4", "method.num_steps=32",
        "method.num_minibatches=2", "stopping.total_steps=1024", "validation.every_steps=512",
        "validation.episodes=4", "validation.num_envs=2", "evaluation.episodes=4",
        "logging.progress=false", "logging.tensorboard=false", "distributed.workers=2", *extra,
    ])  # fmt: skip


def weights(run) -> dict[str, torch.Tensor]:
    files = sorted((run / "final").glob("*.safetensors"))
    return {f"{f.name}/{k}": v for f in files for k, v in load_file(f).items()}


def test_synchronous_collection_on_ray_workers_is_bitwise_reproducible(tmp_path) -> None:
    first = mentor.train(quick(tmp_path, "a")).run_dir
    second = mentor.train(quick(tmp_path, "b")).run_dir
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = weights(mentor.train(quick(tmp_path, "c", "seed=1")).run_dir)
    assert not all(torch.equal(a[k], other[k]) for k in a)  # the seed matters


def test_workers_collect_every_copy_and_record_its_episodes() -> None:
    """2 workers x 2 copies of a 16-step env: each rollout of 32 steps ends 2 episodes per copy
    (one step of each 17 is the reset), every copy's index among 0-3."""
    from mentor.core.networks import ActorCritic
    from mentor.core.normalize import RewardScaler
    from mentor.core.storage import RolloutStorage
    from mentor.distributed.rollouts import RayVecEnv
    from mentor.sections import NetworkConfig

    venv = RayVecEnv.make("mentor.envs.testing:SlowEnv", {"delay": 0.0}, 4, workers=2,
                          address=None, seed=0)  # fmt: skip
    try:
        policy = ActorCritic(venv.observation_space, venv.action_space, NetworkConfig())
        venv.set_policy(policy)
        venv.reset(seed=0)
        storage = RolloutStorage(32, 4, venv.obs_shape, torch.float32, (), torch.int64)
        obs, last_value = venv.collect(policy, storage, RewardScaler(4, 0.99, False))
        assert obs.shape == (4, 4) and last_value.shape == (4,)
        assert storage.valid.sum() == 4 * 32 - 4  # one reset step per copy
        episodes = venv.pop_episodes()
        assert sorted({e.env_index for e in episodes}) == [0, 1, 2, 3]
        assert all(e.length == 16 for e in episodes)
        # The learner's values are those of its own networks on the stored observations.
        values = policy.value(storage.obs.flatten(0, 1)).view(32, 4)
        torch.testing.assert_close(storage.values, values.detach())
    finally:
        venv.close()


def kill_worker_at(monkeypatch, method: str, call: int, worker: int) -> None:
    """ray.kill worker ``worker`` just before the ``call``-th call of ``RayVecEnv.method``
    (collect or transitions) gathers its work."""
    from mentor.distributed import rollouts

    original = getattr(rollouts.RayVecEnv, method)
    calls = {"n": 0}

    def then_kill(self, *args):
        calls["n"] += 1
        if calls["n"] == call:
            ray.kill(self.actors[worker])
        return original(self, *args)

    monkeypatch.setattr(rollouts.RayVecEnv, method, then_kill)


def test_a_killed_worker_is_replaced_and_training_finishes(tmp_path, monkeypatch) -> None:
    """ray.kill on a worker in the middle of a run: the next rollout replaces it (its copies
    start new episodes), the run ends by its budget and the manifest lists the restart."""
    kill_worker_at(monkeypatch, "collect", call=3, worker=1)
    result = mentor.train(quick(tmp_path, "k"))
    assert result.stop_reason.startswith("budget")
    manifest = (result.run_dir / "manifest.json").read_text()
    assert "Ray rollout worker 1 died" in manifest and "replaced (restart 1)" in manifest


def test_a_worker_whose_env_keeps_crashing_stops_the_run_past_max_restarts(tmp_path) -> None:
    """Each replacement's env crashes again (CrashingEnv, step 40 of its life): the second crash
    is past distributed.max_restarts=1, and the run stops naming it."""
    crash = ('env.kwargs={"crash_at_step": 40}', "env.preflight=false")
    experiment = quick(tmp_path, "c", "distributed.max_restarts=1", *crash,
                       env_id="mentor.envs.faulty:CrashingEnv")  # fmt: skip
    with pytest.raises(EnvWorkerError, match=r"Ray rollout worker \d raised .*max_restarts=1"):
        mentor.train(experiment)


def test_a_ray_run_resumes_exactly_with_its_workers_and_without_ray(tmp_path) -> None:
    from test_resume import assert_resumes_bitwise, copy_stopped_at, manifest

    def experiment(name: str):
        return quick(tmp_path, name, "seed=3", "stopping.total_steps=2048",
                     "checkpoints.every_steps=512", "checkpoints.keep_last=10",
                     env_id="mentor.envs.testing:SlowEnv")  # fmt: skip

    reference = assert_resumes_bitwise(experiment, tmp_path)
    # Without Ray: the run goes on in one process, its envs at new episodes.
    local = copy_stopped_at(reference, tmp_path / "local", keep=2)
    result = mentor.resume(local, ["distributed.workers=null"])
    assert result.stop_reason.startswith("budget")
    assert manifest(local)["resumes"][0]["env"].startswith("reset to new episodes")


def test_bad_distributed_input_is_refused_naming_it(tmp_path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"distributed.workers=3 must divide env.num_envs=4"):
        quick(tmp_path, "x", "distributed.workers=3")
    with pytest.raises(ConfigError, match=r"distributed.workers.*greater than or equal to 1"):
        quick(tmp_path, "x", "distributed.workers=0")
    with pytest.raises(ConfigError, match=r"async needs distributed.workers"):
        quick(tmp_path, "x", "distributed.mode=async", "distributed.workers=null")
    with pytest.raises(ConfigError, match=r"method bc does not collect on Ray workers; those"):
        build(method="bc", env_id="CartPole-v1", overrides=["distributed.workers=2"])
    with pytest.raises(ConfigError, match=r"mode=async is PPO's; method dqn collects one block"):
        off_policy(tmp_path, "x", "dqn", "distributed.mode=async")
    with pytest.raises(ConfigError, match=r"max_staleness.*greater than or equal to 0"):
        quick(tmp_path, "x", "distributed.mode=async", "distributed.max_staleness=-1")
    ray.shutdown()  # joining a cluster needs no Ray of this process running
    with pytest.raises(ConfigError, match=r"'127.0.0.1:1'.*ray start --head"):
        mentor.train(quick(tmp_path, "x", "distributed.address=127.0.0.1:1"))
    assert not (tmp_path / "x").exists()  # refused before a run folder was made
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(MissingPackageError, match=r"pip install 'mentor\[ray\]'"):
        mentor.train(quick(tmp_path, "y"))


class ScriptOnlyEnv(gym.Env):
    """An env registered in the test's process only: Ray workers cannot make it."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,))
    action_space = gym.spaces.Discrete(2)


def test_an_env_the_workers_cannot_make_is_refused_naming_it_and_why(tmp_path) -> None:
    gym.register("ScriptOnly-v0", entry_point=ScriptOnlyEnv)
    try:
        experiment = quick(tmp_path, "s", "env.preflight=false", env_id="ScriptOnly-v0")
        with pytest.raises(EnvError, match=r"env 'ScriptOnly-v0': the Ray rollout workers could "
                           r"not make it \(.*ScriptOnly.*\); .*importable"):  # fmt: skip
            mentor.train(experiment)
    finally:
        gym.registry.pop("ScriptOnly-v0")


def test_the_cli_takes_workers_and_refuses_an_unreachable_cluster_in_one_line(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mentor.cli", "train", "ppo", "CartPole-v1", "--workers", "2",
         "--address", "127.0.0.1:1", "--set", f"output_dir={tmp_path}", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0] and "Traceback" not in done.stderr


def test_the_cli_trains_sac_on_workers_raising_num_envs_to_a_multiple_of_them(tmp_path) -> None:
    """`mentor train sac Pendulum-v1 --workers 2`: SAC's preset steps 1 copy, so each worker
    gets one of 2 (said in one line), and the run trains on the workers."""
    done = subprocess.run(
        [sys.executable, "-m", "mentor.cli", "train", "sac", "Pendulum-v1", "--workers", "2",
         "--quiet", *[arg for value in (f"output_dir={tmp_path}", "name=sac",
         "stopping.total_steps=256", "method.learning_starts=128", "validation.every_steps=256",
         "validation.episodes=1", "evaluation.episodes=1") for arg in ("--set", value)]],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "env.num_envs 1 -> 2: each of the 2 Ray workers steps 1 copies" in done.stdout
    saved = (tmp_path / "sac" / "experiment.yaml").read_text()
    assert "num_envs: 2" in saved and "workers: 2" in saved


def match_run(folder, seed: int, workers: int | None, *overrides: str):
    """PPO on the 4-way match task (SlowEnv without its wait: random play 4 of 16, solved 16),
    4 copies, 1,024 env steps, 20-episode evaluation: with Ray workers, or in one process."""
    experiment = build(method="ppo", env_id="mentor.envs.testing:SlowEnv", overrides=[
        f"output_dir={folder}", f"name=match-{workers}-{seed}", f"seed={seed}",
        'env.kwargs={"delay": 0.0}', "env.num_envs=4", "method.num_steps=32",
        "method.num_minibatches=2", "stopping.total_steps=1024", "validation.every_steps=512",
        "validation.episodes=10", "validation.num_envs=2", "evaluation.episodes=20",
        "logging.progress=false", "logging.tensorboard=false", "method.learning_rate=3e-3",
        f"distributed.workers={'null' if workers is None else workers}", *overrides,
    ])  # fmt: skip
    return mentor.train(experiment)


def test_ppo_on_two_workers_learns_to_the_threshold_of_one_process(tmp_path) -> None:
    """The same task, budget and threshold with 2 Ray workers and without Ray."""
    on_ray = match_run(tmp_path, 0, 2).evaluation.return_mean
    local = match_run(tmp_path, 0, None).evaluation.return_mean
    # Seeds 0-9 (benchmarks/seed_distributions.py ppo_workers): 16.0 for every seed, on Ray and
    # in one process. Random play: 4 +- 0.39 (the std of a 20-episode mean), so 12 is 20 stds
    # above it, with 4 of margin below every seed of either.
    assert on_ray >= 12.0 and local >= 12.0, (on_ray, local)


def test_ppo_async_on_two_workers_learns_to_the_threshold_of_one_process(tmp_path) -> None:
    """distributed.mode=async (V-trace over lagging rollouts) learns the match task."""
    result = match_run(tmp_path, 0, 2, "distributed.mode=async")
    # Seeds 0-9 (benchmarks/seed_distributions.py ppo_async): 16.0 for every seed. Random play:
    # 4 +- 0.39 (the std of a 20-episode mean), so 12 is 20 stds above it, with 4 of margin
    # below every seed.
    assert result.evaluation.return_mean >= 12.0, result.evaluation.return_mean
    logged = (result.run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "time/staleness" in logged and "time/dropped_rollouts" in logged


def test_async_workers_survive_a_kill_and_resume_from_a_checkpoint(tmp_path, monkeypatch) -> None:
    """A worker killed mid-rollout in async mode is replaced; a run stopped after a checkpoint
    resumes (its envs at new episodes: rollouts were under way) and ends by its budget."""
    from test_resume import copy_stopped_at, manifest

    kill_worker_at(monkeypatch, "collect", call=3, worker=0)
    experiment = quick(tmp_path, "a", "distributed.mode=async", "checkpoints.every_steps=256",
                       "checkpoints.keep_last=10")  # fmt: skip
    result = mentor.train(experiment)
    assert result.stop_reason.startswith("budget") and result.total_steps == 1024
    assert "Ray rollout worker 0 died" in (result.run_dir / "manifest.json").read_text()
    monkeypatch.undo()  # the resume runs unharmed
    run = copy_stopped_at(result.run_dir, tmp_path, keep=2)
    resumed = mentor.resume(run)
    assert resumed.stop_reason.startswith("budget") and resumed.total_steps == 1024
    assert "asynchronous collection" in manifest(run)["resumes"][0]["env"]


CLUSTER_LOST = """
import os, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path

os.environ["RAY_AUTH_MODE"] = "disabled"  # the head's and this driver's alike
sys.path.insert(0, sys.argv[2])
import ray
import mentor
from mentor.distributed import rollouts
from mentor.errors import ClusterLostError
from test_distributed import quick

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Unix socket paths in it
head = subprocess.Popen(
    [str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
     "--num-cpus=2", "--block", f"--temp-dir={temp}", "--include-dashboard=false"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
)
original = rollouts.RayVecEnv.collect
calls = [0]

def collect_then_lose_the_cluster(self, policy, storage, scaler):
    calls[0] += 1
    if calls[0] == 6:  # after 5 updates
        os.killpg(head.pid, signal.SIGKILL)  # the head and every process it started
        time.sleep(1.0)
    return original(self, policy, storage, scaler)

rollouts.RayVecEnv.collect = collect_then_lose_the_cluster
for _ in range(60):
    if rollouts._unreachable(f"127.0.0.1:{port}") is None:
        break
    time.sleep(0.5)
experiment = quick(Path(sys.argv[1]), "lost", f"distributed.address=127.0.0.1:{port}",
                   "checkpoints.every_steps=256", "checkpoints.keep_last=10")
try:
    mentor.train(experiment)
    print("NOT STOPPED")
except ClusterLostError as exc:
    print(f"STOPPED: {exc}")
finally:
    try:
        os.killpg(head.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    head.wait()
    ray.shutdown()
"""


def test_a_cluster_that_goes_away_stops_the_run_with_a_checkpoint_and_resume_goes_on(
    tmp_path,
) -> None:
    """A cluster started as a user would (`ray start --head`, on this machine), joined with
    distributed.address, killed in the middle of a run: the run stops with ClusterLostError
    naming the head and how to go on, the last update's checkpoint is written, and the run
    resumes in one process to its budget. (In a process of its own: Ray keeps its token
    settings per process, and the head must share them.)"""
    from test_resume import manifest

    script = tmp_path / "lose_the_cluster.py"
    script.write_text(CLUSTER_LOST)
    tests = str(Path(__file__).parent)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), tests],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "STOPPED: the Ray cluster went away: its head at" in done.stdout, done.stderr[-2000:]
    assert "mentor resume" in done.stdout and "distributed.workers=null" in done.stdout
    run = tmp_path / "lost"
    # 5 updates of 128 steps were done: the failure's checkpoint is the last update's.
    assert (run / "checkpoints" / f"step_{5 * 128:012d}").exists()
    assert "the Ray cluster went away" in manifest(run)["stop_reason"]
    result = mentor.resume(run, ["distributed.workers=null", "distributed.address=null"])
    assert result.stop_reason.startswith("budget") and result.total_steps == 1024


# --- multi-agent envs on workers -----------------------------------------------------------------


def test_mappo_on_workers_resumes_bitwise_equal_with_its_critic_input_made_in_each(
    tmp_path,
) -> None:
    """MAPPO on simple_spread, 4 copies on 2 workers: each worker makes the centralized critic's
    input for its own copies; a run killed after its second checkpoint resumes to the same
    weights and logs as the run that never stopped."""
    from test_multiagent import _resumable
    from test_resume import assert_resumes_bitwise

    def experiment(name: str):
        return _resumable("mappo", "mpe2.simple_spread_v3", tmp_path, name).model_copy(
            update={"distributed": DistributedConfig(workers=2)}
        )

    assert_resumes_bitwise(experiment, tmp_path)


def test_turn_based_ippo_on_workers_learns_the_moves_paid_while_their_player_waits(
    tmp_path,
) -> None:
    """Relay on 2 workers: which rows wait for the other player's move comes back with each
    rollout, or player_0 (never paid at its own move) stays at random play."""
    from test_turns import relay_ippo_run

    result = relay_ippo_run(tmp_path, 0, "distributed.workers=2")
    first = result.evaluation.agents["player_0"].return_mean
    # Seeds 0-9 (benchmarks/seed_distributions.py relay_turns --set distributed.workers=2):
    # 4.000 for every seed. Without the waits credited player_0 reaches at most 2.3 (one
    # process, 10 seeds); random play earns 2.0 +- 0.22: 3.5 is 0.5 below every seed.
    assert first >= 3.5, result.evaluation


# --- off-policy: Ape-X style workers feeding the learner's replay buffer -------------------------


def off_policy(tmp_path, name: str, method: str, *extra: str, env_id: str = "CartPole-v1"):
    """4 copies on 2 workers, 16 rows a block: 2,048 env steps are 32 blocks exactly."""
    return build(method=method, env_id=env_id, overrides=[
        f"output_dir={tmp_path}", f"name={name}", "env.num_envs=4", "stopping.total_steps=2048",
        "stopping.target_return=null", "method.learning_starts=256", "method.train_freq=4",
        "method.gradient_steps=2", "method.batch_size=32", "validation.every_steps=1024",
        "validation.episodes=2", "validation.num_envs=2", "evaluation.episodes=2",
        "logging.progress=false", "logging.tensorboard=false", "distributed.workers=2",
        "distributed.actor_steps=16", *extra,
    ])  # fmt: skip


def final_state(run) -> tuple[dict, dict[str, torch.Tensor]]:
    meta = json.loads((run / "final" / "meta.json").read_text())
    return meta["state"], load_file(run / "final" / "replay.safetensors")


def assert_rows_in_order(replay: dict[str, torch.Tensor]) -> None:
    """Each copy's rows follow one another: every episode's end is followed by its reset step
    (not learned from), and no other row is left out."""
    done = replay["terminated"] | replay["truncated"]
    assert done[:-1].any(), "no episode ended: the check would be empty"
    assert torch.equal(~replay["valid"][1:], done[:-1])


@pytest.mark.parametrize(
    ("method", "env_id", "extra"),
    [("dqn", "CartPole-v1", ("distributed.worker_epsilons=true",)),
     ("sac", "Pendulum-v1", ()), ("td3", "Pendulum-v1", ())],
)  # fmt: skip
def test_off_policy_workers_fill_the_buffer_with_every_transition_at_the_update_ratio(
    tmp_path, method, env_id, extra
) -> None:
    """Every env step of every worker's copies reaches the replay buffer, in order, and the
    learner takes gradient_steps per train_freq env steps after learning_starts, as in one
    process."""
    result = mentor.train(off_policy(tmp_path, method, method, *extra, env_id=env_id))
    assert result.stop_reason.startswith("budget") and result.total_steps == 2048
    state, replay = final_state(result.run_dir)
    assert replay["valid"].shape == (2048 // 4, 4)  # one row per vector step, none lost
    assert state["progress"]["gradient_steps"] == (2048 - 256) // 4 * 2
    assert_rows_in_order(replay)


def test_apex_epsilons_spread_over_the_workers_and_are_dqns_alone(tmp_path) -> None:
    from mentor.methods.dqn import apex_epsilon

    assert apex_epsilon(0, 4) == pytest.approx(0.4)
    assert apex_epsilon(3, 4) == pytest.approx(0.4**8)
    assert apex_epsilon(0, 1) == pytest.approx(0.4)
    with pytest.raises(ConfigError, match=r"worker_epsilons is DQN's.*method sac"):
        off_policy(tmp_path, "x", "sac", "distributed.worker_epsilons=true", env_id="Pendulum-v1")


def test_off_policy_on_workers_is_bitwise_reproducible_and_resumes_exactly(tmp_path) -> None:
    """TD3 (its noise processes live in the workers): two runs under one seed are equal, and a
    run stopped after a checkpoint, with a block of rows in flight, resumes to the same end."""
    from test_resume import assert_bitwise_equal, assert_resumes_bitwise

    def experiment(name: str):
        noise = "exploration.action_noise.kind=ornstein_uhlenbeck"
        return off_policy(tmp_path, name, "td3", "checkpoints.every_steps=512",
                          "checkpoints.keep_last=10", noise, env_id="Pendulum-v1")  # fmt: skip

    reference = assert_resumes_bitwise(experiment, tmp_path)
    again = mentor.train(experiment("again")).run_dir
    assert_bitwise_equal(again, reference)


def test_a_killed_off_policy_worker_is_replaced_and_its_episodes_are_cut_cleanly(
    tmp_path, monkeypatch
) -> None:
    """ray.kill on a worker while it collects: it is replaced, its copies' episodes end as
    truncated at the row they were in, the next row is their reset step, and the run ends by
    its budget with every row in order."""
    kill_worker_at(monkeypatch, "transitions", call=5, worker=0)
    result = mentor.train(off_policy(tmp_path, "k", "dqn"))
    assert result.stop_reason.startswith("budget")
    manifest = (result.run_dir / "manifest.json").read_text()
    assert "Ray rollout worker 0 died" in manifest and "replaced (restart 1)" in manifest
    _, replay = final_state(result.run_dir)
    assert_rows_in_order(replay)
    # The cut: worker 0's copies (columns 0 and 1) truncated at one row, reset at the next.
    cut = replay["truncated"][:-1, :2] & ~replay["valid"][1:, :2]
    assert cut.all(dim=1).any()


def dqn_match_run(folder, seed: int, workers: int | None, *overrides: str):
    """DQN on the 4-way match task, 4 copies, 2,048 env steps, 20-episode evaluation: with Ray
    workers (16 rows a block), or in one process."""
    experiment = build(method="dqn", env_id="mentor.envs.testing:SlowEnv", overrides=[
        f"output_dir={folder}", f"name=dqn-match-{workers}-{seed}", f"seed={seed}",
        'env.kwargs={"delay": 0.0}', "env.num_envs=4", "stopping.total_steps=2048",
        "stopping.target_return=null", "method.learning_starts=256", "method.train_freq=4",
        "method.gradient_steps=1", "method.batch_size=64", "method.target_update_freq=128",
        "method.learning_rate=3e-3",
        "validation.every_steps=1024", "validation.episodes=10", "validation.num_envs=2",
        "evaluation.episodes=20", "logging.progress=false", "logging.tensorboard=false",
        "distributed.actor_steps=16",
        f"distributed.workers={'null' if workers is None else workers}", *overrides,
    ])  # fmt: skip
    return mentor.train(experiment)


def test_dqn_on_two_workers_learns_to_the_threshold_of_one_process(tmp_path) -> None:
    """Off-policy on Ray learns: DQN with its rows from 2 workers, and in one process."""
    on_ray = dqn_match_run(tmp_path, 0, 2).evaluation.return_mean
    local = dqn_match_run(tmp_path, 0, None).evaluation.return_mean
    # Seeds 0-9 (benchmarks/seed_distributions.py dqn_workers): 16.0 for every seed, on Ray and
    # in one process. Random play: 4 +- 0.39 (the std of a 20-episode mean), so 12 is 20 stds
    # above it, with 4 of margin below every seed of either.
    assert on_ray >= 12.0 and local >= 12.0, (on_ray, local)


# --- a curriculum on workers (issue 15, item 4) ---------------------------------------------------

STAGED = (
    'curriculum={"kind": "staged", "stages": [{"env": {"kwargs": {"sutton_barto_reward": true}}, '
    '"promote": {"steps": 1024}}, {"env": {}}]}'
)


@pytest.mark.parametrize(
    ("method", "curriculum"),
    [("ppo", 'curriculum={"kind": "plr", "tasks": {"seeds": [0, 50]}}'), ("dqn", STAGED)],
)
def test_a_curriculum_on_workers_takes_its_tasks_from_the_one_teacher_and_resumes_bitwise(
    tmp_path, method, curriculum
) -> None:
    """PLR's levels (PPO) and a staged curriculum (DQN, a block of rows in flight at each
    checkpoint) dealt by the learner's teacher to two workers' copies: a run stopped after a
    checkpoint resumes to the same weights, logs, teacher and tasks; the staged run's workers
    play the second stage after its promotion."""
    from test_resume import assert_resumes_bitwise, logged, manifest

    def experiment(name: str):
        extra = ("checkpoints.every_steps=512", "checkpoints.keep_last=10", curriculum)
        if method == "ppo":
            return quick(tmp_path, name, "stopping.total_steps=2048", *extra)
        return off_policy(tmp_path, name, method, *extra)

    reference = assert_resumes_bitwise(experiment, tmp_path, keep=3)
    rows = logged(reference)
    if method == "ppo":
        seen = [float(r["curriculum/levels_seen"]) for r in rows if r["curriculum/levels_seen"]]
        assert seen[-1] > seen[0] >= 4  # levels scored from the workers' rollouts
    else:
        assert [e["step"] for e in manifest(reference)["curriculum_events"]] == [1024]
        assert rows[0].get("curriculum/share_stage1", "") == ""
        assert float(rows[-1]["curriculum/share_stage1"]) > 0  # the workers took stage 1
