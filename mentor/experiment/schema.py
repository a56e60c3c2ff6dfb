"""The experiment: every section of the training workflow as a typed, validated model.

Every field has a default and a description; unknown keys are errors, and a bad value names the
field, the value and what is allowed. The method's section is one of the registered method
configs (``mentor.experiment.methods``), whose ``check`` holds its rules across sections.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from mentor.errors import did_you_mean
from mentor.experiment.methods import METHOD_CONFIGS, MethodConfig, PPOConfig
from mentor.sections import NetworkConfig, Schedule, ScheduleOrValue, Section

# How a declared info key becomes one number per episode (env.info_keys).
INFO_AGGREGATIONS = {
    "last": "the value in the info of the episode's last step",
    "sum": "the sum over the episode's steps",
}
# Methods that train under experiment.constraint (a cost limit).
CONSTRAINED_METHODS = ("ppo", "sac")
# Key names whose summary columns would be those of the return and length (rollout/ep_return_mean,
# return_mean in validation.csv, ...).
RESERVED_INFO_KEYS = ("return", "length", "ep_return", "ep_length")


class EnvConfig(Section):
    """Step 1: the environment the agent trains in."""

    id: str = Field(
        "CartPole-v1",
        description="A registered Gymnasium id, an entry point 'package.module:ClassName', or "
        "a PettingZoo env: its module (mpe2.simple_spread_v3) or 'package.module:function'.",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments given to the env's constructor."
    )
    preset: Literal["atari"] | None = Field(
        None,
        description=(
            "atari: an ALE/<Game>-v5 id as the literature trains on it — no-op reset, frame "
            "skip 4 with max-pooling, 84x84 grayscale, 4 frames stacked, sticky actions; "
            "rewards clipped to their sign and a lost life as the end of an episode for "
            "learning only (records keep whole games and their points). null: the env as made."
        ),
    )
    num_envs: int = Field(8, ge=1, le=4096, description="Copies of the env stepped together.")
    vectorization: Literal["auto", "native", "sync", "async"] = Field(
        "auto",
        description=(
            "auto: the env's own vectorized implementation when it has one and num_envs >= 8 "
            "(below that a plain loop is faster), else sync. "
            "native: require it. sync: one process. async: one process per copy, shared memory."
        ),
    )
    max_episode_steps: int | None = Field(
        None, ge=1, description="Truncate episodes after this many steps (default: the env's)."
    )
    normalize_obs: bool = Field(
        False, description="Normalize observations with running mean and variance (saved)."
    )
    normalize_reward: bool = Field(
        False, description="Scale rewards by the running std of the discounted return (saved)."
    )
    clip_obs: float = Field(10.0, gt=0, description="Clip normalized observations to ±clip_obs.")
    check_finite: bool = Field(
        True, description="Stop with an error when an observation or reward is NaN or infinite."
    )
    preflight: bool = Field(
        True,
        description="Check the env's API on a short random rollout before the run folder is "
        "made (an env that only raises is a warning with async's restartable workers).",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        description=(
            "async: env workers that raise, hang or die are restarted (their episode is "
            "truncated) up to this many times in a run; one more stops it with a checkpoint."
        ),
    )
    step_timeout: float | None = Field(
        60.0, gt=0, description="async: seconds an env may take for a step or reset (None: wait)."
    )
    agent_ids: bool = Field(
        True,
        description="Multi-agent envs: append a one-hot of each agent's index to its "
        "observation, so that one network shared by the agents tells them apart.",
    )
    info_keys: dict[str, Literal["last", "sum"]] = Field(
        default_factory=dict,
        description=(
            "Keys of the env's info kept with each finished episode (numbers, NaN-checked), "
            "with how an episode aggregates them: last (the value at its last step, as "
            "is_success) or sum (over its steps, as a per-step cost). A list of names means "
            "last for each; an entry {name: sum} gives the aggregation: [is_success, {cost: sum}]."
        ),
    )

    @field_validator("info_keys", mode="before")
    @classmethod
    def _info_keys_form(cls, value: Any) -> Any:
        """[is_success, {cost: sum}] or {is_success: last, cost: sum} -> the mapping."""
        if isinstance(value, dict):
            entries = list(value.items())
        elif isinstance(value, list | tuple):
            entries = []
            for entry in value:
                if isinstance(entry, str):
                    entries.append((entry, "last"))
                elif isinstance(entry, dict) and len(entry) == 1:
                    entries.append(next(iter(entry.items())))
                else:
                    raise ValueError(
                        f"entry {entry!r} is neither a key name nor one {{name: aggregation}}; "
                        "write for example [is_success, {cost: sum}]"
                    )
        else:
            raise ValueError(
                "expected a list of key names with optional aggregations, [is_success, "
                "{cost: sum}], or a mapping of names to aggregations, {is_success: last}"
            )
        keys: dict[str, str] = {}
        for name, how in entries:
            if not isinstance(name, str) or not name or name.startswith("_"):
                raise ValueError(
                    f"key {name!r} is not an info key name (a non-empty string; names starting "
                    "with '_' are Gymnasium's masks of vector infos)"
                )
            if name in RESERVED_INFO_KEYS:
                raise ValueError(
                    f"key '{name}' would share its summary columns with the episode's own; "
                    f"these names are taken: {', '.join(RESERVED_INFO_KEYS)}"
                )
            if how not in INFO_AGGREGATIONS:
                allowed = " or ".join(f"{k} ({v})" for k, v in INFO_AGGREGATIONS.items())
                raise ValueError(f"key '{name}': aggregation {how!r} is not allowed; use {allowed}")
            if name in keys:
                raise ValueError(f"key '{name}' is declared twice")
            keys[name] = how
        return keys


class ValidationEnvConfig(Section):
    """The env validation runs in, when it differs from the training env."""

    id: str | None = Field(None, description="Env id; default: the training env's id.")
    kwargs: dict[str, Any] | None = Field(None, description="Kwargs; default: the training env's.")


class ValidationConfig(Section):
    """Step 8: periodic evaluation on separate env copies with other seeds."""

    every_steps: int = Field(10_000, ge=1, description="Validate every this many env steps.")
    episodes: int = Field(20, ge=1, description="Episodes per validation.")
    num_envs: int = Field(
        10, ge=1, description="Validation env copies (the episodes are split evenly among them)."
    )
    deterministic: bool = Field(True, description="Act with the mode of the policy, not a sample.")
    at_start: bool | None = Field(
        None,
        description=(
            "Validate the initial policy too, before the first update (a transfer's jumpstart); "
            "None: when agent.init names a checkpoint."
        ),
    )
    env: ValidationEnvConfig = Field(default_factory=ValidationEnvConfig)
    seed_offset: int = Field(
        1_000_000,
        description=(
            "Validation envs are seeded with seed + seed_offset, the same seeds at every "
            "validation, so successive scores differ by the policy, not by the episodes drawn."
        ),
    )


class AgentConfig(Section):
    """Steps 2 and 3: the architecture and the initial policy."""

    network: NetworkConfig = Field(default_factory=NetworkConfig)
    init: str = Field(
        "random",
        description=("'random' (seeded), or a run folder or checkpoint folder to start from."),
    )
    init_layers: list[str] = Field(
        default_factory=list,
        description=(
            "Load only the source's tensors matching these patterns: a prefix (actor takes "
            "actor_body and actor_head) or a glob (*_body.*); all if empty."
        ),
    )
    init_map: dict[str, str] = Field(
        default_factory=dict,
        description="{target prefix: source prefix}: the source's tensors under another name.",
    )
    init_strict: bool = Field(
        True,
        description=(
            "True: the source must fit (its spaces the env's, every chosen tensor in place "
            "with its shape). False: load the tensors that fit, build the others new, list each."
        ),
    )
    freeze: list[str] = Field(
        default_factory=list,
        description="Parameters matching these patterns (prefixes or globs) are not trained.",
    )
    init_replay: bool = Field(
        False,
        description=(
            "Off-policy methods: fill the replay buffer with the init run's (its final or "
            "latest periodic checkpoint holds it)."
        ),
    )
    lr_scale: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "{pattern: scale}: parameters matching a pattern train at scale x the learning "
            "rate (the first matching pattern decides)."
        ),
    )

    @model_validator(mode="after")
    def _scales_positive(self) -> AgentConfig:
        bad = {k: v for k, v in self.lr_scale.items() if not v > 0}
        if bad:
            raise ValueError(f"agent.lr_scale must be > 0 (0: use agent.freeze), got {bad}")
        return self


class DataConfig(Section):
    """Step 4 from data: the dataset a method learns from (bc, dagger, gail)."""

    path: str | None = Field(
        None,
        description="A dataset folder (mentor record writes them; Minari's format), an "
        "installed Minari dataset id, or a .csv/.parquet table of decisions.",
    )
    observation_columns: list[str] = Field(
        default_factory=list, description="Table: the feature columns, in order."
    )
    action_column: str | None = Field(None, description="Table: the action (label) column.")
    reward_column: str | None = Field(None, description="Table: a reward column (optional).")
    episode_column: str | None = Field(
        None, description="Table: rows with the same value form one episode (default: each row)."
    )
    max_episodes: int | None = Field(None, ge=1, description="Use the first N episodes only.")
    validation_fraction: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Episodes held out for validation loss / early stopping (0: none, every "
        "episode trains; then method.patience must be null).",
    )
    folds: int | None = Field(
        None, ge=2, description="k-fold cross-validation over episodes: score per fold, spread."
    )


class ActionNoiseConfig(Section):
    """Noise added to a deterministic policy's actions (in [-1, 1] units of the action range)."""

    kind: Literal["gaussian", "ornstein_uhlenbeck"] = Field(
        "gaussian", description="Independent Gaussian, or temporally correlated OU noise."
    )
    sigma: ScheduleOrValue = Field(0.1, description="Noise scale, a number or a schedule.")
    theta: float = Field(
        0.15,
        gt=0,
        description="OU noise: pull back toward zero per env step (dt = 1; from a library "
        "using dt, theta * dt and sigma * sqrt(dt) are the equivalents).",
    )


class SDEConfig(Section):
    """Generalized state-dependent exploration (gSDE, Raffin et al. 2021; ``core/sde.py``):
    noise that is a function of the state, drawn again every sample_freq steps."""

    sample_freq: int = Field(
        -1,
        description="Env steps between draws of the noise (per env); -1: once a rollout (PPO's "
        "num_steps, SAC's train_freq).",
    )
    log_std_init: float = Field(
        -2.0, description="Initial log sigma of every (feature, action dimension) pair."
    )

    @field_validator("sample_freq")
    @classmethod
    def _freq(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(
                f"sample_freq {value}: give a number of steps >= 1, or -1 for once a rollout"
            )
        return value


class ExplorationConfig(Section):
    """Step 7: how the agent explores. Each method reads its own fields: ppo entropy_coef;
    dqn epsilon; sac alpha, alpha_init, target_entropy; td3 action_noise; ppo and sac sde;
    option_critic epsilon (over options) and entropy_coef (of its intra-option policies)."""

    entropy_coef: ScheduleOrValue = Field(
        0.0,
        description="ppo, option_critic: weight of the entropy bonus, a number or a schedule.",
    )
    epsilon: ScheduleOrValue = Field(
        default_factory=lambda: Schedule(kind="linear", start=1.0, end=0.05, fraction=0.1),
        description="dqn: probability of a random action (option_critic: of a random option), "
        "a number or a schedule.",
    )
    alpha: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="sac: entropy weight; 'auto' tunes it toward target_entropy.",
    )
    alpha_init: float = Field(1.0, gt=0, description="sac: the tuned alpha's first value.")
    target_entropy: float | Literal["auto"] = Field(
        "auto",
        description="sac: entropy the tuning aims at; auto: -dim(A) for Box, 0.98 log|A| for "
        "Discrete.",
    )
    action_noise: ActionNoiseConfig = Field(
        default_factory=ActionNoiseConfig, description="td3: exploration noise on actions."
    )
    sde: SDEConfig | None = Field(
        None,
        description="ppo, sac (Box actions): state-dependent exploration (gSDE) instead of "
        "independent noise at every step; null: off.",
    )


class EvaluationConfig(Section):
    """Step 5: the final evaluation written to evaluation.json when training ends."""

    episodes: int = Field(100, ge=0, description="Episodes (0: no final evaluation).")
    num_envs: int = Field(
        25, ge=1, description="Env copies (the episodes are split evenly among them)."
    )
    deterministic: bool = Field(True, description="Act with the mode of the policy.")
    success_threshold: float | None = Field(
        None, description="Return counted as a success (default: the env's reward threshold)."
    )


class PlateauConfig(Section):
    """Stop when validation return shows no upward trend (one-sided Mann-Kendall test)."""

    window: int = Field(10, ge=4, description="Latest validations the trend test looks at.")
    alpha: float = Field(
        0.05, gt=0, lt=1, description="Plateau when the trend's p-value is above this."
    )


class StoppingConfig(Section):
    """Step 10: when training stops. The first rule met stops it; the reason is recorded."""

    total_steps: int = Field(100_000, ge=1, description="Budget of env steps.")
    target_return: float | Literal["env"] | None = Field(
        None,
        description=(
            "Stop when the validation mean return reaches this; 'env' uses the env's "
            "reward_threshold."
        ),
    )
    target_success: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Stop when the validation success rate reaches this (a success: the env's "
            "info['is_success'], else a return of at least evaluation.success_threshold)."
        ),
    )
    plateau: PlateauConfig | None = Field(None, description="Stop on a validation plateau.")
    max_seconds: float | None = Field(None, gt=0, description="Budget of wall-clock seconds.")


class CheckpointConfig(Section):
    """Checkpoints: safetensors + JSON, written atomically."""

    every_steps: int | None = Field(
        None, ge=1, description="Save every this many env steps (None: only best/ and final/)."
    )
    keep_last: int = Field(3, ge=1, description="Periodic checkpoints kept on disk.")
    keep_best: bool = Field(True, description="Keep the best checkpoint on validation return.")


class LoggingConfig(Section):
    """Where metrics go."""

    csv: bool = Field(True, description="metrics.csv in the run folder.")
    tensorboard: bool = Field(True, description="TensorBoard events in the run folder.")
    progress: bool = Field(True, description="A live progress bar on the console.")
    every_steps: int = Field(
        1000,
        ge=1,
        description="Off-policy methods: env steps between metric rows (on-policy methods log "
        "once per update).",
    )


# The methods whose loop collects through core/rollout.py, which Ray rollout workers run (and
# fedavg, whose clients are Ray actors).
RAY_METHODS = ("ppo", "gail", "ippo", "mappo", "dqn", "sac", "td3", "es", "fedavg")


class DistributedConfig(Section):
    """Step 4 on Ray: experience collected by rollout workers (``mentor/distributed``)."""

    workers: int | None = Field(
        None,
        ge=1,
        description="Ray rollout workers, each stepping env.num_envs / workers copies with the "
        "current policy (None: collect in this process, without Ray).",
    )
    address: str | None = Field(
        None,
        description="A Ray cluster to join (host:port of `ray start --head`); None starts a "
        "local Ray for the run.",
    )
    timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds a worker's rollout may take; a worker past it is replaced (None: "
        "no limit).",
    )
    max_restarts: int = Field(
        3, ge=0, description="Workers replaced over the run (died, hung, env crashed), then stop."
    )
    mode: Literal["sync", "async"] = Field(
        "sync",
        description="PPO: sync waits for every worker's rollout each update (bitwise "
        "reproducible under a seed); async updates on the first rollouts to arrive, each "
        "worker going on at once with the newest weights, and corrects for their lag with "
        "V-trace (for envs whose step time varies).",
    )
    max_staleness: int = Field(
        1,
        ge=0,
        description="async: a rollout collected with weights more than this many updates old "
        "is dropped (its worker goes on with the newest).",
    )
    actor_steps: int = Field(
        32,
        ge=1,
        description="Off-policy methods: vector steps each worker takes per call, between "
        "refreshes of its weights; the learner stores and learns from them while the workers "
        "take the next ones (actions lag the learner's weights by up to twice this).",
    )
    worker_epsilons: bool = Field(
        False,
        description="DQN: worker i of N explores with its own fixed epsilon 0.4^(1 + 7 i / (N - "
        "1)) (Ape-X, Horgan et al. 2018) instead of exploration.epsilon's schedule.",
    )


class TaskSettings(Section):
    """An env setting of a curriculum: its id and kwargs (None: the experiment's)."""

    id: str | None = Field(None, description="Env id (None: env.id).")
    kwargs: dict[str, Any] | None = Field(None, description="Env kwargs (None: env.kwargs).")


class PromoteRule(Section):
    """When a stage is passed: a validation success rate or mean return held over consecutive
    validations on the stage, or a number of env steps spent in it."""

    success_rate: float | None = Field(None, gt=0, le=1)
    mean_return: float | None = Field(None, description="The stage's validation mean return.")
    evaluations: int = Field(1, ge=1, description="Consecutive validations that must meet it.")
    steps: int | None = Field(None, ge=1, description="Env steps in the stage, then promote.")

    @model_validator(mode="after")
    def _one_rule(self) -> PromoteRule:
        given = [
            n for n in ("success_rate", "mean_return", "steps") if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a promotion or demotion rule takes one of success_rate, mean_return or steps "
                f"(got {', '.join(given) or 'none'})"
            )
        return self


class DemoteRule(Section):
    """When to go back a stage: the stage's validation below this, over consecutive ones."""

    success_rate: float | None = Field(None, ge=0, lt=1)
    mean_return: float | None = None
    evaluations: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _one_rule(self) -> DemoteRule:
        if (self.success_rate is None) == (self.mean_return is None):
            raise ValueError("a demotion rule takes one of success_rate or mean_return")
        return self


class Stage(Section):
    """One stage of a staged curriculum."""

    env: TaskSettings = Field(default_factory=TaskSettings)
    promote: PromoteRule | None = Field(None, description="None: the last stage stays.")
    demote: DemoteRule | None = None


class Draw(Section):
    """A distribution of one env parameter, drawn per episode: exactly one of the three."""

    uniform: tuple[float, float] | None = None
    normal: tuple[float, float] | None = Field(None, description="(mean, std)")
    choice: list[float] | None = None

    @model_validator(mode="after")
    def _one(self) -> Draw:
        given = [n for n in ("uniform", "normal", "choice") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give one of uniform, normal or choice (got {given or 'none'})")
        if self.uniform is not None and self.uniform[0] > self.uniform[1]:
            raise ValueError(f"uniform [{self.uniform[0]}, {self.uniform[1]}]: low > high")
        if self.normal is not None and self.normal[1] < 0:
            raise ValueError(f"normal: std {self.normal[1]} < 0")
        if self.choice is not None and not self.choice:
            raise ValueError("choice: an empty list")
        return self


class SeedRange(Section):
    """Procedural levels: episodes reset with seeds drawn from [low, high)."""

    seeds: tuple[int, int]

    @model_validator(mode="after")
    def _ordered(self) -> SeedRange:
        if self.seeds[0] >= self.seeds[1]:
            raise ValueError(f"tasks.seeds [{self.seeds[0]}, {self.seeds[1]}): low >= high")
        return self


class ParamRanges(Section):
    """Tasks as bins of env parameters: each range split into ``bins`` equal parts, a task per
    combination; an episode of a task draws its parameters uniformly within its bin."""

    ranges: dict[str, tuple[float, float]]
    bins: int = Field(4, ge=1, le=64)

    @model_validator(mode="after")
    def _ordered(self) -> ParamRanges:
        if not self.ranges:
            raise ValueError("tasks.ranges: no parameter")
        for name, (low, high) in self.ranges.items():
            if low > high:
                raise ValueError(f"tasks.ranges.{name} [{low}, {high}]: low > high")
        if self.bins ** len(self.ranges) > 4096:
            raise ValueError(f"tasks.ranges: {self.bins}^{len(self.ranges)} bins is too many")
        return self


class CurriculumConfig(Section):
    """Which task each env copy's next episode plays (``mentor/curricula``): at the env edge,
    for every method; decided in this process, so a resumed run is bitwise the unbroken one."""

    kind: Literal["staged", "uniform", "learning_progress", "plr"] = Field(
        "uniform",
        description="staged: stages in order, each passed by its promote rule; uniform: each "
        "episode a task drawn uniformly from tasks (or the experiment's env); "
        "learning_progress: tasks drawn by the absolute change of their success (Portelas et "
        "al. 2020, Kanitscheider et al. 2021); plr: Prioritized Level Replay over levels "
        "(Jiang et al. 2021), PPO only.",
    )
    stages: list[Stage] = Field(default_factory=list, description="staged: in order.")
    tasks: list[TaskSettings] | SeedRange | ParamRanges | None = Field(
        None,
        description="Env settings, {seeds: [low, high]} (levels), or {ranges: {param: [low, "
        "high]}, bins: n} (parameter bins).",
    )
    window: int = Field(
        20, ge=2, description="learning_progress: a task's last outcomes compared, in halves."
    )
    explore: float = Field(
        0.2, ge=0, le=1, description="learning_progress: the share of tasks drawn uniformly."
    )
    replay_prob: float = Field(0.5, ge=0, le=1, description="plr: replay a seen level (p).")
    temperature: float = Field(0.1, gt=0, description="plr: of the rank prioritization (beta).")
    staleness: float = Field(0.1, ge=0, le=1, description="plr: the staleness mix (rho).")
    randomize: dict[str, Draw] = Field(
        default_factory=dict,
        description="Env parameters drawn per episode (domain randomization), set on "
        "env.unwrapped: e.g. {length: {uniform: [0.4, 0.6]}} for CartPole.",
    )

    randomize_validation: bool = Field(
        False,
        description="Draw the randomized parameters in validation too (the same draws at each "
        "validation, from a stream of their own); default: the env's own parameters.",
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> CurriculumConfig:
        if self.kind == "staged":
            if len(self.stages) < 2:
                raise ValueError("curriculum.kind staged needs at least 2 stages")
            if self.tasks is not None:
                raise ValueError("curriculum.tasks is for kind uniform; staged takes stages")
            for index, stage in enumerate(self.stages[:-1]):
                if stage.promote is None:
                    raise ValueError(
                        f"curriculum.stages[{index}] has no promote rule: only the last stage "
                        "may go without"
                    )
        elif self.stages:
            raise ValueError(f"curriculum.stages is for kind staged; {self.kind} takes tasks")
        if self.randomize_validation and not self.randomize:
            raise ValueError("curriculum.randomize_validation needs curriculum.randomize")
        if self.kind == "plr" and not isinstance(self.tasks, SeedRange):
            raise ValueError("curriculum.kind plr replays levels: give tasks: {seeds: [low, high]}")
        if self.kind == "learning_progress" and not (
            isinstance(self.tasks, ParamRanges) or (isinstance(self.tasks, list) and self.tasks)
        ):
            raise ValueError(
                "curriculum.kind learning_progress needs tasks: a list of env settings or "
                "{ranges: {param: [low, high]}, bins: n}"
            )
        return self


# The methods whose updates take continual learning's loss terms (``session.penalties``).
CONTINUAL_METHODS = ("ppo", "gail", "dqn", "sac")
# Methods that train a learner seat against the pool (PPO's loop; mentor/selfplay).
SELFPLAY_METHODS = ("ppo", "ippo")


class RegularizerConfig(Section):
    """Continual learning: a loss term that holds the parameters earlier tasks relied on."""

    kind: Literal["none", "ewc", "online_ewc", "l2"] = Field(
        "none",
        description=(
            "ewc: Fisher-weighted L2 toward each finished task's parameters (Kirkpatrick et al. "
            "2017); online_ewc: one decayed Fisher and the last task's parameters (Schwarz et "
            "al. 2018); l2: unweighted L2 toward the last task's parameters."
        ),
    )
    strength: float = Field(100.0, ge=0, description="The term's weight (lambda).")
    fisher_samples: int = Field(
        512, ge=0, description="States of a finished task the Fisher diagonal is estimated on."
    )
    decay: float = Field(0.9, gt=0, le=1, description="online_ewc: the old Fisher's weight.")

    @model_validator(mode="after")
    def _samples(self) -> RegularizerConfig:
        if self.kind in ("ewc", "online_ewc") and self.fisher_samples < 1:
            raise ValueError(
                f"continual.regularizer.fisher_samples={self.fisher_samples}: {self.kind} "
                "estimates the Fisher diagonal on that many states of each finished task; give "
                "at least 1 (a few hundred is usual)"
            )
        return self


class RehearsalConfig(Section):
    """Continual learning: earlier tasks' states, and what the policy did there, kept."""

    kind: Literal["none", "distill", "replay"] = Field(
        "none",
        description=(
            "distill: a behaviour-cloning term on states kept from each finished task and the "
            "actions the policy took there then (policy-distillation rehearsal); replay "
            "(off-policy methods): transitions kept from each finished task, a share of "
            "every replay batch."
        ),
    )
    states: int = Field(1024, ge=1, description="States (replay: transitions) kept per task.")
    share: float = Field(
        0.25, gt=0, lt=1, description="replay: the share of each batch from kept transitions."
    )
    batch_size: int = Field(64, ge=1, description="Kept states in each update's term.")
    strength: float = Field(1.0, ge=0, description="The term's weight.")


class ContinualTask(TaskSettings):
    """One task of a continual sequence: an env setting, and its name in the metrics."""

    name: str | None = Field(None, description="Default: task<i>.")


class ContinualConfig(Section):
    """A sequence of tasks trained one after another (continual learning)."""

    tasks: list[ContinualTask] = Field(description="The tasks, in the order they are trained.")
    steps_per_task: int = Field(ge=1, description="Env steps on each task.")
    eval_episodes: int = Field(
        10, ge=1, description="Episodes per task in each row of the performance matrix."
    )
    task_id: bool = Field(
        False,
        description=(
            "Append a one-hot of the task's index to the observation (Box observations), so "
            "one policy can tell tasks apart (Continual World's setting)."
        ),
    )
    regularizer: RegularizerConfig = Field(default_factory=RegularizerConfig)
    rehearsal: RehearsalConfig = Field(default_factory=RehearsalConfig)
    baselines: list[str] | None = Field(
        None,
        description=(
            "Run folders of each task trained alone from scratch, in order: forward transfer "
            "is measured against the areas under their validation curves."
        ),
    )

    @model_validator(mode="after")
    def _two_tasks(self) -> ContinualConfig:
        if len(self.tasks) < 2:
            raise ValueError("continual.tasks needs at least 2 tasks")
        if self.baselines is not None and len(self.baselines) != len(self.tasks):
            raise ValueError(
                f"continual.baselines has {len(self.baselines)} runs for {len(self.tasks)} "
                "tasks: give one single-task run per task, in order"
            )
        return self


class LeagueConfig(Section):
    """A league beside the self-play learner (the main agent): exploiters, each a PPO learner of
    its own with its own env copies and opponents, whose snapshots join the pool
    (``mentor/selfplay/league.py``; AlphaStar, Vinyals et al. 2019)."""

    main_exploiters: int = Field(
        1, ge=0, description="Exploiters that play the main agent as it is now."
    )
    league_exploiters: int = Field(
        1, ge=0, description="Exploiters that play the whole pool, PFSP over their own record."
    )
    copies: int | None = Field(
        None, ge=1, description="Env copies of each exploiter (None: env.num_envs)."
    )
    win_rate: float = Field(
        0.7,
        gt=0,
        le=1,
        description=(
            "An exploiter joins the pool as a snapshot when its win rate over its last "
            "`selfplay.window` games reaches this (draws count half)."
        ),
    )
    max_updates: int = Field(
        50, ge=1, description="...or after this many of its updates without (AlphaStar's timeout)."
    )
    reset_probability: float = Field(
        0.25,
        ge=0,
        le=1,
        description=(
            "The chance that a league exploiter starts over from the initial weights after it "
            "joins (a main exploiter always does)."
        ),
    )

    @model_validator(mode="after")
    def _someone(self) -> LeagueConfig:
        if self.main_exploiters + self.league_exploiters == 0:
            raise ValueError(
                "selfplay.league: 0 main exploiters and 0 league exploiters is no league; "
                "set at least one (or remove selfplay.league)"
            )
        return self


class SelfPlayConfig(Section):
    """Self-play: the learner holds one seat of a multi-agent game, opponents drawn from a pool
    of its own past versions and fixed baselines hold the others (``mentor/selfplay``)."""

    opponents: Literal["latest", "uniform", "pfsp"] = Field(
        "pfsp",
        description=(
            "How each game's opponent is drawn from the pool: the newest snapshot, uniformly, "
            "or prioritized by the learner's loss rate against each (PFSP, Vinyals et al. 2019)."
        ),
    )
    pfsp_power: float = Field(
        2.0, ge=0, description="PFSP's weighting (1 - win rate)^p: higher favours hard opponents."
    )
    baseline_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "The share of games against the fixed baselines, drawn among them by the same rule, "
            "the rest among the snapshots (None: one rule over all members, where many "
            "snapshots leave the baselines few games)."
        ),
    )
    add_every: int | None = Field(
        10, ge=1, description="Add the learner to the pool every this many updates (None: never)."
    )
    add_win_rate: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Add the learner when its win rate over its last `window` games against the pool "
            "reaches this (draws count half; None: never)."
        ),
    )
    window: int = Field(
        200, ge=1, description="Games behind each win rate (PFSP's and add_win_rate's)."
    )
    pool_size: int = Field(
        20, ge=1, description="Snapshots kept in the pool (the oldest leave; baselines stay)."
    )
    baselines: list[str] = Field(
        default_factory=lambda: ["random"],
        description=(
            "Fixed pool members: random, a module:function policy (one observation as the env "
            "gives it -> an action), or a run/checkpoint folder of an agent for this env."
        ),
    )
    validate_against: str = Field(
        "random",
        description="The opponent of validation and of `mentor eval` without --opponent.",
    )
    teams: list[list[str]] | None = Field(
        None,
        description=(
            "The sides of a team game, each a list of agent names; the learner holds one side "
            "of each copy, the opponent the others (None: each agent a side of its own)."
        ),
    )
    league: LeagueConfig | None = Field(
        None,
        description=(
            "Exploiters that train beside the learner and join its pool (None: plain self-play)."
        ),
    )

    @model_validator(mode="after")
    def _some_rule(self) -> SelfPlayConfig:
        if self.add_every is None and self.add_win_rate is None and not self.baselines:
            raise ValueError(
                "selfplay: with neither add_every nor add_win_rate, and no baselines, the pool "
                "would stay the initial policy alone; set a rule or a baseline"
            )
        return self


class ConstraintConfig(Section):
    """Training under a limit on the expected episode cost (PPO and SAC): a Lagrange multiplier
    weighs the cost against the return and adapts until the cost keeps the limit."""

    cost: str = Field(
        "cost",
        description="The info key with each step's cost (declared in env.info_keys as a sum, "
        "added there if missing). A cost function of your own: wrap the env with "
        "mentor.envs.safety:Safe (kwargs: env, cost).",
    )
    limit: float = Field(description="The most expected cost an episode may have.")
    multiplier: Literal["lagrangian", "pid"] = Field(
        "lagrangian",
        description="lagrangian: gradient ascent on the multiplier; pid: the PID-Lagrangian "
        "update of Stooke et al. 2020 (less overshoot and oscillation).",
    )
    multiplier_init: float = Field(0.0, ge=0, description="The multiplier at the start.")
    multiplier_lr: float = Field(
        0.05, gt=0, description="lagrangian: step size of the multiplier per update."
    )
    kp: float = Field(0.1, ge=0, description="pid: weight of the (smoothed) cost's excess.")
    ki: float = Field(0.01, ge=0, description="pid: weight of the excess summed over updates.")
    kd: float = Field(0.01, ge=0, description="pid: weight of the cost's rise over d_delay.")
    pid_ema: float = Field(
        0.95, ge=0, lt=1, description="pid: smoothing of the P and D terms' cost estimates."
    )
    d_delay: int = Field(10, ge=1, description="pid: updates over which D measures the rise.")
    scale: Literal["separate", "joint"] = Field(
        "separate",
        description="ppo: separate: the reward's and the cost's advantages each standardized "
        "(as OmniSafe); joint: both divided by one scale, the std of A_r - lambda A_c, so that "
        "the policy weighs reward and cost in their own units (lambda: reward per unit of cost).",
    )
    gamma: float | None = Field(
        None,
        gt=0,
        le=1,
        description="ppo: the cost critic's discount (default: the method's gamma). The limit "
        "is on the undiscounted episode cost; a short horizon for the reward (Pendulum's 0.9) "
        "can leave the cost of a step blind to the actions that caused it a swing earlier.",
    )
    warmup: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of the run's steps before the multiplier moves from multiplier_init "
        "(the task learned first: a limit met from the start can keep a swing-up unlearned).",
    )
    margin: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of the limit kept free in training: the multiplier drives the "
        "episode cost to limit * (1 - margin), the limit still judges (violations, the best "
        "checkpoint). A multiplier keeps its target only on average, so a final policy trained "
        "at the limit ends over it about as often as under.",
    )

    @property
    def target(self) -> float:
        """The episode cost the multiplier drives training to."""
        return self.limit * (1.0 - self.margin)

    @field_validator("limit")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError(
                f"cost limit {value} is below zero: costs are at least 0, so a limit is too "
                "(0 asks for no cost at all)"
            )
        return value


class BacktestConfig(Section):
    """`mentor backtest`: walk-forward training and testing of a trading agent (issue 18)."""

    folds: int = Field(3, ge=1, description="Consecutive blocks of the series, one run each.")
    shares: list[float] = Field(
        [0.6, 0.2, 0.2],
        min_length=3,
        max_length=3,
        description="Each block's train, validation and test shares, in time order.",
    )
    seeds: list[int] = Field([0], min_length=1, description="A run per fold and seed.")
    baselines: list[Literal["buy_and_hold", "random", "ma_crossover"]] = Field(
        ["buy_and_hold", "random", "ma_crossover"],
        description="Played on every test period beside the agent (random: once per seed).",
    )
    periods_per_year: float = Field(252.0, gt=0, description="Bars a year (annual figures).")
    confidence: float = Field(0.95, gt=0, lt=1, description="Bootstrap intervals over the runs.")

    @field_validator("shares")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if min(value) <= 0:
            raise ValueError(f"shares {value}: train, validation and test each need a share > 0")
        return value


class Experiment(Section):
    """One training run, all ten steps of the workflow."""

    name: str | None = Field(None, description="Run name (default: '<method>-<env id>').")
    seed: int = Field(0, ge=0, description="Seeds Python, NumPy, torch and the envs.")
    output_dir: str = Field("runs", description="Run folders are created under this folder.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when present, else CPU."
    )
    num_threads: int | None = Field(
        1,
        ge=1,
        description=(
            "torch CPU threads. 1 is fastest for small networks and bitwise reproducible; "
            "None leaves torch's default."
        ),
    )
    env: EnvConfig = Field(default_factory=EnvConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    method: MethodConfig = Field(default_factory=PPOConfig)
    exploration: ExplorationConfig = Field(default_factory=ExplorationConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    stopping: StoppingConfig = Field(default_factory=StoppingConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    curriculum: CurriculumConfig | None = Field(
        None, description="Tasks per episode: staged, uniform, domain randomization."
    )
    continual: ContinualConfig | None = Field(
        None,
        description="Tasks one after another: the performance matrix, forgetting, EWC, rehearsal.",
    )
    selfplay: SelfPlayConfig | None = Field(
        None, description="A game's other seats held by past versions and baselines (pool)."
    )
    constraint: ConstraintConfig | None = Field(
        None, description="A limit on the expected episode cost (constrained RL: PPO, SAC)."
    )
    backtest: BacktestConfig | None = Field(
        None, description="Walk-forward folds, seeds and baselines of `mentor backtest`."
    )

    @model_validator(mode="before")
    @classmethod
    def _method_defaults_to_ppo(cls, data: Any) -> Any:
        method = data.get("method") if isinstance(data, dict) else None
        if isinstance(method, dict) and "name" not in method:
            data = {**data, "method": {"name": "ppo", **method}}
        elif isinstance(method, dict) and method["name"] not in METHOD_CONFIGS:
            raise ValueError(
                f"method.name '{method['name']}' is not a method"
                + did_you_mean(str(method["name"]), METHOD_CONFIGS)
                + f"; methods: {', '.join(METHOD_CONFIGS)}"
            )
        return data

    def _check_constraint(self) -> None:
        """Constrained methods, a cost key summed over episodes, collection in this process."""
        key, method = self.constraint.cost, self.method.name
        if method not in CONSTRAINED_METHODS:
            raise ValueError(
                f"constraint: method {method} does not train under a cost limit; those that do: "
                f"{', '.join(CONSTRAINED_METHODS)}"
            )
        if self.env.info_keys.get(key, "sum") != "sum":
            raise ValueError(
                f"constraint.cost '{key}' is declared in env.info_keys as {self.env.info_keys[key]}"
                "; a per-step cost is summed over the episode: declare {" + key + ": sum}"
            )
        self.env.info_keys.setdefault(key, "sum")
        if self.constraint.gamma is not None and method != "ppo":
            raise ValueError(
                f"constraint.gamma discounts PPO's cost critic; method {method}'s cost critic "
                "discounts as its own critics do: set method.gamma, or leave constraint.gamma "
                "unset"
            )
        if self.distributed.workers is not None:
            raise ValueError(
                "constraint with distributed.workers: the per-step costs are read in this "
                "process; leave distributed.workers unset"
            )
        if self.continual is not None and self.continual.rehearsal.kind == "replay":
            raise ValueError(
                "constraint with continual.rehearsal.kind=replay: the kept transitions hold no "
                "costs; use rehearsal kind distill or none"
            )

    def _check_continual(self) -> None:
        continual, method = self.continual, self.method.name
        if self.curriculum is not None:
            raise ValueError(
                "continual and curriculum both decide which task each episode plays: give one"
            )
        if self.distributed.mode == "async":
            raise ValueError("continual with distributed.mode=async: use distributed.mode=sync")
        rehearsal = continual.rehearsal.kind
        if rehearsal == "replay" and method not in ("dqn", "sac", "td3"):
            raise ValueError(
                f"continual.rehearsal.kind replay mixes kept transitions into replay batches; "
                f"method {method} has no replay buffer (dqn, sac and td3 do; distill is the "
                "on-policy rehearsal)"
            )
        if rehearsal == "replay" and getattr(self.method, "prioritized", False):
            raise ValueError(
                "continual.rehearsal.kind replay with method.prioritized: kept transitions have "
                "no priority; use uniform replay"
            )
        helps = continual.regularizer.kind != "none" or rehearsal == "distill"
        if helps and method not in CONTINUAL_METHODS:
            raise ValueError(
                f"continual.regularizer and continual.rehearsal are loss terms that "
                f"{', '.join(CONTINUAL_METHODS)} add to their updates; method {method} does "
                "not yet (naive fine-tuning, kind none, works with every method)"
            )
        # The sequence is the budget: each task its steps (a stopping target or plateau, which
        # would end the sequence on one task's validation, is not asked: runs/session.py).
        self.stopping.total_steps = len(continual.tasks) * continual.steps_per_task

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        method = self.method
        method.check(self)  # the method's own rules across sections
        defaults = ExplorationConfig()
        unused = sorted(
            name
            for name in self.exploration.model_fields_set - set(type(method).exploration)
            if getattr(self.exploration, name) != getattr(defaults, name)
        )
        if unused:
            raise ValueError(
                f"exploration.{unused[0]} is not used by method {method.name}, which reads "
                f"exploration.{', exploration.'.join(type(method).exploration)}"
            )
        if self.agent.network.memory is not None and not type(method).recurrent:
            able = [name for name, cfg in METHOD_CONFIGS.items() if cfg.recurrent]
            raise ValueError(
                f"agent.network.memory: method {method.name} does not train a recurrent policy; "
                f"those that do: {', '.join(able)}"
            )
        memory = self.agent.network.memory
        if memory is not None and memory.critic and self.agent.network.shared:
            raise ValueError(
                "agent.network.memory.critic with agent.network.shared: the critic's own memory "
                "cell feeds a body of its own; set shared: false or memory.critic: false"
            )
        if self.agent.network.memory is not None and self.distributed.workers is not None:
            raise ValueError(
                "agent.network.memory with distributed.workers: the workers' rollouts carry no "
                "memory yet; leave distributed.workers unset"
            )
        if self.agent.network.memory is not None and self.exploration.sde is not None:
            raise ValueError(
                "agent.network.memory with exploration.sde: gSDE's features under a recurrent "
                "core are not supported yet; use one of the two"
            )
        if self.agent.network.memory is not None and self.continual is not None:
            raise ValueError(
                "agent.network.memory with continual: its regularizers and rehearsal read the "
                "policy one observation at a time, without memory; not supported yet"
            )
        if self.agent.network.memory is not None and self.selfplay is not None:
            raise ValueError(
                "agent.network.memory with selfplay: the seats' policies carry no memory yet"
            )
        workers = self.distributed.workers
        if workers is not None and method.name not in RAY_METHODS:
            raise ValueError(
                f"distributed.workers: method {method.name} does not collect on Ray workers; "
                f"those that do: {', '.join(RAY_METHODS)}"
            )
        if self.distributed.mode == "async" and workers is None:
            raise ValueError(
                "distributed.mode=async needs distributed.workers: it is how Ray rollout workers "
                "collect (without workers, collection is in this process)"
            )
        if self.distributed.mode == "async" and method.name != "ppo":
            how = "synchronously"
            if method.name in ("dqn", "sac", "td3"):
                how = "one block ahead of the learner already (distributed.actor_steps)"
            raise ValueError(
                f"distributed.mode=async is PPO's; method {method.name} collects {how}"
            )
        if self.curriculum is not None and self.curriculum.kind == "plr" and method.name != "ppo":
            raise ValueError(
                f"curriculum.kind plr scores levels by PPO's advantages; method {method.name} "
                "has none: use ppo, or kind uniform or learning_progress"
            )
        if self.curriculum is not None and workers is not None and self.distributed.mode == "async":
            raise ValueError(
                "curriculum with distributed.mode=async: the teacher deals each round's tasks "
                "and hears the rounds in order, which asynchronous rollouts do not keep; use "
                "distributed.mode=sync"
            )
        if self.continual is not None:
            self._check_continual()
        if self.constraint is not None:
            self._check_constraint()
        if self.exploration.sde is not None and workers is not None:
            raise ValueError(
                "exploration.sde with distributed.workers: the noise matrices are drawn in this "
                "process; leave distributed.workers unset"
            )
        if self.selfplay is not None and method.name not in SELFPLAY_METHODS:
            raise ValueError(
                f"selfplay: method {method.name} does not train by self-play; methods that do: "
                f"{', '.join(SELFPLAY_METHODS)}"
            )
        if self.selfplay is not None and (self.curriculum or self.continual):
            raise ValueError("selfplay with a curriculum or continual sequence: give one")
        if self.selfplay is not None and workers is not None:
            raise ValueError(
                "selfplay with distributed.workers: the pool's opponents act in this process; "
                "leave distributed.workers unset"
            )
        if self.distributed.worker_epsilons and method.name != "dqn":
            raise ValueError(
                f"distributed.worker_epsilons is DQN's (epsilon-greedy); method {method.name} "
                "explores otherwise"
            )
        if workers is not None and self.env.num_envs % workers:
            raise ValueError(
                f"distributed.workers={workers} must divide env.num_envs={self.env.num_envs}: "
                "each worker steps the same number of copies"
            )
        if self.agent.init_replay and method.name not in ("dqn", "sac", "td3"):
            raise ValueError(
                f"agent.init_replay fills a replay buffer; method {method.name} has none (dqn, "
                "sac and td3 do)"
            )
        if self.agent.init == "random" and (
            self.agent.init_layers
            or self.agent.freeze
            or self.agent.init_map
            or self.agent.init_replay
        ):
            raise ValueError(
                "agent.init_layers, agent.init_map, agent.init_replay and agent.freeze need "
                "agent.init to name a checkpoint"
            )
        return self

    @property
    def run_name(self) -> str:
        """``name``, else ``<method>-<env>``: the env id as a folder name, a PettingZoo module
        (``mpe2.simple_spread_v3``) by its last part (``mappo-simple_spread_v3``)."""
        if self.name:
            return self.name
        env_id = self.env.id
        if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", env_id):
            env_id = env_id.rpartition(".")[2]
        return f"{self.method.name}-{env_id.replace('/', '_').replace(':', '_')}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
