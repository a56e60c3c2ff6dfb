"""Every method's hyperparameters: one typed section per method, chosen by ``method.name``.

A method's config class is its registration: it carries what the rest of mentor asks about the
method, and every list of methods is derived from ``METHODS`` below.

    name               its ``method.name`` (the ``Literal`` field's default)
    module             the module with ``train(experiment, run, resume)`` and ``build_networks``
    needs_data         whether it learns from ``data.path`` (bc, gail)
    supported_actions  the action spaces it handles (names of Gymnasium space classes)
    action_masks       whether it honours an env's action masks (``envs/masks.py``)
    exploration        the ``exploration`` fields it reads
    multi_agent        whether it trains on multi-agent (PettingZoo) envs, which then are the
                       only envs it trains on (ippo, mappo)
    check(experiment)  its rules across sections (a rollout that splits into minibatches, ...)

Adding a method is its file in ``mentor/methods/``, its config class here (listed in
``METHODS``) and a preset in ``mentor/presets/<name>.yaml``; a class that lacks one of these is
refused when this module is imported, naming what is missing.

Torch-free on purpose: validating an experiment (and ``mentor --help``) must not import torch.
"""

from __future__ import annotations

import importlib
import math
from importlib import resources
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, field_validator

from mentor.errors import ConfigError, did_you_mean
from mentor.sections import Schedule, ScheduleOrValue, Section, positive_start

if TYPE_CHECKING:
    from mentor.experiment.schema import Experiment


class MethodSection(Section):
    """What every method's section declares (see the module docstring)."""

    name: str
    module: ClassVar[str]
    needs_data: ClassVar[bool] = False
    supported_actions: ClassVar[tuple[str, ...]]
    action_masks: ClassVar[bool] = False
    exploration: ClassVar[tuple[str, ...]] = ()
    multi_agent: ClassVar[bool] = False
    recurrent: ClassVar[bool] = False  # trains a policy with memory (agent.network.memory)

    def check(self, experiment: Experiment) -> None:
        """Rules across sections; raise ValueError naming the fields and values. None here."""


class PPOConfig(MethodSection):
    """Step 6: Proximal Policy Optimization (Schulman et al. 2017) with GAE."""

    name: Literal["ppo"] = Field("ppo", description="The method.")
    learning_rate: ScheduleOrValue = Field(
        3e-4, description="Adam step size, a number or a schedule."
    )
    num_steps: int = Field(128, ge=1, description="Steps per env per rollout.")
    num_epochs: int = Field(4, ge=1, description="Passes over each rollout.")
    num_minibatches: int = Field(4, ge=1, description="Minibatches per pass.")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE's bias-variance trade-off.")
    clip_coef: ScheduleOrValue = Field(0.2, description="PPO's ratio clip, a number or schedule.")
    value_clip_coef: float | None = Field(
        None, gt=0, description="Clip the value update like the policy's (None: off)."
    )
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value loss.")
    max_grad_norm: float | None = Field(
        0.5, gt=0, description="Clip the global gradient norm (None: off)."
    )
    target_kl: float | None = Field(
        None, gt=0, description="Stop the epochs early when the approximate KL exceeds this."
    )
    normalize_advantages: bool = Field(True, description="Standardize advantages per minibatch.")
    value_norm: bool = Field(
        False,
        description="Learn values in units of the running mean and std of the returns (the "
        "value loss in those units; MAPPO's ValueNorm, Yu et al. 2022).",
    )
    adam_eps: float = Field(1e-5, gt=0, description="Adam's epsilon.")
    sequence_length: int | None = Field(
        None,
        ge=1,
        description="A recurrent policy's update (agent.network.memory): steps per sequence "
        "of its minibatches, each from the memory stored at its start (None: each env's whole "
        "rollout).",
    )
    burn_in: int = Field(
        0,
        ge=0,
        description="A recurrent policy's update: steps before each sequence that only bring "
        "its memory up to date from the stored one (no loss on them; R2D2's burn-in).",
    )

    _positive = field_validator("learning_rate", "clip_coef")(positive_start)

    module: ClassVar[str] = "mentor.methods.ppo"
    supported_actions: ClassVar = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")
    action_masks: ClassVar = True
    exploration: ClassVar = ("entropy_coef", "sde")
    recurrent: ClassVar = True

    def check(self, experiment: Experiment) -> None:
        memory = experiment.agent.network.memory
        if memory is None and (self.sequence_length is not None or self.burn_in):
            raise ValueError(
                "method.sequence_length and method.burn_in shape a recurrent policy's update; "
                "this agent has none (agent.network.memory is null)"
            )
        if memory is not None and type(self).recurrent:
            length = self.sequence_length or self.num_steps
            sequences = experiment.env.num_envs * -(-self.num_steps // length)
            if sequences < self.num_minibatches:
                raise ValueError(
                    f"a recurrent policy's minibatches are groups of sequences: env.num_envs * "
                    f"ceil(num_steps / sequence_length) = {sequences} sequences cannot make "
                    f"method.num_minibatches = {self.num_minibatches} minibatches"
                )
        batch = experiment.env.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ValueError(
                f"the rollout of env.num_envs * method.num_steps = {experiment.env.num_envs} * "
                f"{self.num_steps} = {batch} steps does not split into "
                f"method.num_minibatches = {self.num_minibatches} equal minibatches"
            )


class MultiAgentPPOConfig(PPOConfig):
    """What IPPO and MAPPO add to PPO's fields."""

    recurrent: ClassVar = False  # agents' rows: not yet
    exploration: ClassVar = ("entropy_coef",)  # no gSDE over agents' rows yet

    share_parameters: bool = Field(
        True,
        description="One network for every agent (told apart by env.agent_ids); false: one set "
        "of parameters per agent, all agents still evaluated in one batched call.",
    )

    multi_agent: ClassVar = True

    def check(self, experiment: Experiment) -> None:
        super().check(experiment)
        if not self.share_parameters and not experiment.env.agent_ids:
            raise ValueError(
                "method.share_parameters=false needs env.agent_ids=true: each row's agent id "
                "chooses its parameters"
            )


class IPPOConfig(MultiAgentPPOConfig):
    """Step 6: independent PPO on a multi-agent env (de Witt et al. 2020, arXiv:2011.09533):
    every agent acts and learns from its own observation, through one network shared by the
    agents (each agent's index appended to its observation: env.agent_ids)."""

    name: Literal["ippo"] = Field("ippo", description="The method.")

    module: ClassVar[str] = "mentor.methods.ippo"
    supported_actions: ClassVar = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")


class MAPPOConfig(MultiAgentPPOConfig):
    """Step 6: multi-agent PPO (Yu et al. 2022, arXiv:2103.01955): decentralized actors as in
    IPPO, and a centralized critic that reads the whole env during training."""

    name: Literal["mappo"] = Field("mappo", description="The method.")
    critic: Literal["state", "observations"] = Field(
        "state",
        description="What the centralized critic reads, with the agent's index: state, the "
        "env's global state (env.state()); observations, every agent's observation.",
    )

    module: ClassVar[str] = "mentor.methods.mappo"
    supported_actions: ClassVar = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")


class OffPolicyConfig(MethodSection):
    """What DQN, SAC and TD3 share: a replay buffer and an update-to-data ratio."""

    learning_rate: ScheduleOrValue = Field(3e-4, description="Adam step size, number or schedule.")
    buffer_size: int = Field(1_000_000, ge=1, description="Transitions the replay buffer holds.")
    learning_starts: int = Field(
        100, ge=0, description="Env steps collected before the first update."
    )
    batch_size: int = Field(256, ge=1, description="Transitions per gradient step.")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    train_freq: int = Field(1, ge=1, description="Env steps between rounds of updates.")
    gradient_steps: int = Field(
        1,
        ge=1,
        description="Gradient steps per round: the update-to-data ratio is gradient_steps / "
        "train_freq.",
    )
    n_step: int = Field(1, ge=1, description="Steps of reward summed before bootstrapping.")
    tau: float = Field(
        0.005, gt=0, le=1, description="Polyak weight of target updates (1.0: a hard copy)."
    )
    max_grad_norm: float | None = Field(
        None, gt=0, description="Clip the global gradient norm (None: off)."
    )
    adam_eps: float = Field(1e-8, gt=0, description="Adam's epsilon.")

    _positive = field_validator("learning_rate")(positive_start)

    def check(self, experiment: Experiment) -> None:
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"method.batch_size {self.batch_size} is larger than method.buffer_size "
                f"{self.buffer_size}"
            )
        if self.learning_starts >= experiment.stopping.total_steps:
            raise ValueError(
                f"method.learning_starts {self.learning_starts} is not below "
                f"stopping.total_steps {experiment.stopping.total_steps}: training would never "
                "update"
            )


class DQNConfig(OffPolicyConfig):
    """Step 6: Deep Q-Networks (Mnih et al. 2015) with double-Q targets (van Hasselt et al. 2016),
    optional dueling head (Wang et al. 2016), n-step returns and prioritized replay."""

    name: Literal["dqn"] = Field("dqn", description="The method.")
    learning_rate: ScheduleOrValue = Field(1e-4, description="Adam step size, number or schedule.")
    batch_size: int = Field(32, ge=1, description="Transitions per gradient step.")
    train_freq: int = Field(4, ge=1, description="Env steps between rounds of updates.")
    tau: float = Field(
        1.0, gt=0, le=1, description="Polyak weight of target updates (1.0: a hard copy)."
    )
    target_update_freq: int = Field(
        1000, ge=1, description="Env steps between target network updates."
    )
    double_q: bool = Field(True, description="Pick the next action with the online network.")
    dueling: bool = Field(False, description="Separate value and advantage streams.")
    loss: Literal["huber", "mse"] = Field("huber", description="TD error loss.")
    max_grad_norm: float | None = Field(
        10.0, gt=0, description="Clip the global gradient norm (None: off)."
    )
    prioritized: bool = Field(False, description="Prioritized replay (Schaul et al. 2016).")
    priority_alpha: float = Field(0.6, ge=0, description="How much priorities skew sampling.")
    priority_beta: ScheduleOrValue = Field(
        0.4, description="Importance-sampling correction, usually annealed to 1."
    )

    module: ClassVar[str] = "mentor.methods.dqn"
    supported_actions: ClassVar = ("Discrete",)
    action_masks: ClassVar = True
    exploration: ClassVar = ("epsilon",)


class SACConfig(OffPolicyConfig):
    """Step 6: Soft Actor-Critic (Haarnoja et al. 2018) with twin critics and automatic entropy
    tuning; discrete actions as in Christodoulou 2019."""

    name: Literal["sac"] = Field("sac", description="The method.")
    target_update_freq: int = Field(
        1, ge=1, description="Gradient steps between Polyak target updates."
    )

    module: ClassVar[str] = "mentor.methods.sac"
    supported_actions: ClassVar = ("Box", "Discrete")
    exploration: ClassVar = ("alpha", "alpha_init", "target_entropy", "sde")


class TD3Config(OffPolicyConfig):
    """Step 6: Twin Delayed DDPG (Fujimoto et al. 2018): twin critics, delayed actor updates,
    target policy smoothing."""

    name: Literal["td3"] = Field("td3", description="The method.")
    learning_rate: ScheduleOrValue = Field(1e-3, description="Adam step size, number or schedule.")
    policy_delay: int = Field(2, ge=1, description="Critic updates per actor update.")
    target_policy_noise: float = Field(
        0.2, ge=0, description="Std of the noise added to target actions (in [-1, 1] units)."
    )
    target_noise_clip: float = Field(0.5, ge=0, description="Clip of that noise.")

    module: ClassVar[str] = "mentor.methods.td3"
    supported_actions: ClassVar = ("Box",)
    exploration: ClassVar = ("action_noise",)


class BCConfig(MethodSection):
    """Step 6 from data: behaviour cloning, supervised learning of actions from observations
    (classification for discrete actions, regression for continuous ones)."""

    name: Literal["bc"] = Field("bc", description="The method.")
    # 128 and 2e-3: on 10 CartPole expert episodes, early stopping comes 3x sooner than with 64
    # and 1e-3 (0.6-0.8 s against 2-2.8 s on 2 cores), at the same return; as good on Pendulum.
    learning_rate: float = Field(2e-3, gt=0, description="AdamW step size.")
    batch_size: int = Field(128, ge=1, description="Transitions per gradient step.")
    max_epochs: int = Field(200, ge=1, description="Passes over the training data at most.")
    patience: int | None = Field(
        10,
        ge=1,
        description="Early stopping: epochs without a lower validation loss before stopping "
        "(None: train max_epochs, keep the last).",
    )
    loss: Literal["log_likelihood", "mse"] = Field(
        "log_likelihood",
        description="log_likelihood: cross-entropy (discrete) or Gaussian negative "
        "log-likelihood (continuous); mse: squared error of the mean action (continuous).",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    entropy_coef: float = Field(
        0.0, ge=0, description="Bonus on the policy's entropy (keeps a Gaussian's std open)."
    )
    policy_of: Literal["ppo", "sac", "td3", "dqn"] = Field(
        "ppo",
        description="Whose networks BC trains (the policy part), so that method can start "
        "from the result with agent.init: ppo (actor-critic), sac (squashed Gaussian actor), "
        "td3 (deterministic actor: loss mse) or dqn (Q-values as a softmax policy's logits).",
    )

    module: ClassVar[str] = "mentor.methods.bc"
    needs_data: ClassVar[bool] = True
    supported_actions: ClassVar = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")
    exploration: ClassVar = ()

    def check(self, experiment: Experiment) -> None:
        if self.patience is not None and experiment.data.validation_fraction == 0:
            raise ValueError(
                f"method.patience {self.patience} stops early on the loss of held-out episodes, "
                "and data.validation_fraction 0 holds none out: set method.patience null "
                "(train method.max_epochs, keep the last weights) or validation_fraction > 0"
            )


class DAggerConfig(BCConfig):
    """Step 6 with an expert: DAgger (Ross et al. 2011). Each round rolls out a mixture of the
    expert (probability beta) and the learner, asks the expert for the action in every visited
    state, adds those labels to the data and retrains on all of it."""

    name: Literal["dagger"] = Field("dagger", description="The method.")
    expert: str = Field(
        description="The expert: a run or checkpoint folder (a mentor agent), or a "
        "'package.module:function' mapping a batch of observations to a batch of actions."
    )
    rounds: int = Field(10, ge=1, description="Rounds of roll out, label, aggregate, retrain.")
    episodes_per_round: int = Field(5, ge=1, description="Episodes rolled out each round.")
    beta: ScheduleOrValue = Field(
        Schedule(kind="exponential", start=1.0, end=0.01),
        description="Probability of acting with the expert, over the rounds (round 1: start).",
    )
    max_epochs: int = Field(50, ge=1, description="Passes over the data per round at most.")

    module: ClassVar[str] = "mentor.methods.dagger"
    needs_data: ClassVar[bool] = False  # data.path is optional: the expert records D0 otherwise


class GAILConfig(PPOConfig):
    """Step 6 from demonstrations: generative adversarial imitation (Ho & Ermon 2016). A
    discriminator tells expert (observation, action) pairs from the policy's; its output is the
    reward of a PPO update (mentor's, called, not subclassed)."""

    name: Literal["gail"] = Field("gail", description="The method.")  # type: ignore[assignment]
    recurrent: ClassVar = False  # its discriminator and BC warm start read single steps
    exploration: ClassVar = ("entropy_coef",)  # gSDE not tested under a learned reward yet
    discriminator_hidden_sizes: list[int] = Field(
        [64, 64], description="Hidden layer sizes of the discriminator."
    )
    discriminator_learning_rate: float = Field(3e-4, gt=0, description="Its Adam step size.")
    discriminator_epochs: int = Field(
        1, ge=1, description="Passes of discriminator updates per PPO rollout."
    )
    discriminator_batch_size: int = Field(256, ge=1, description="Pairs of each side per step.")
    gradient_penalty: float | None = Field(
        10.0, ge=0, description="Weight of the gradient penalty on expert data (None: off)."
    )
    spectral_norm: bool = Field(False, description="Spectral normalization of its layers.")
    reward: Literal["gail", "airl"] = Field(
        "gail", description="gail: -log(1 - D); airl: log D - log(1 - D)."
    )
    absorbing: bool | None = Field(
        None,
        description=(
            "Model an episode's end as an absorbing state that the discriminator also judges "
            "(Kostrikov et al. 2019): a terminated step's reward gains gamma / (1 - gamma) "
            "times the absorbing state's reward, so ending early pays only where the expert "
            "ends. None: on with the airl reward, off with gail (always positive, it would pay "
            "for ending episodes while the discriminator still learns)."
        ),
    )

    module: ClassVar[str] = "mentor.methods.gail"
    needs_data: ClassVar[bool] = True
    action_masks: ClassVar = False  # its discriminator and demonstrations know of no masks

    @property
    def uses_absorbing(self) -> bool:
        return self.reward == "airl" if self.absorbing is None else self.absorbing


class RARLConfig(PPOConfig):
    """Step 6 against an adversary: robust adversarial RL (Pinto et al. 2017). An adversary
    perturbs the protagonist's actions or observations within a budget and learns to minimise
    its return; the two train by PPO in turns, each against the other's current policy."""

    name: Literal["rarl"] = Field("rarl", description="The method.")  # type: ignore[assignment]
    exploration: ClassVar = ("entropy_coef",)  # the adversary's networks have no gSDE
    recurrent: ClassVar = False
    adversary: Literal["action", "observation"] = Field(
        "action", description="What the adversary perturbs."
    )
    budget: ScheduleOrValue = Field(
        0.2,
        description=(
            "The largest perturbation, per dimension, as a share of the half-range of the "
            "action space's bounds (adversary=action) or of the observation space's (adversary="
            "observation; 1 for unbounded dimensions). A schedule ({start: 0, end: 0.4, "
            "fraction: 0.25}) lets the protagonist learn the task before the full push."
        ),
    )
    protagonist_rollouts: int = Field(
        1, ge=1, description="Rollouts (each followed by an update) of the protagonist per turn."
    )
    adversary_rollouts: int = Field(
        1, ge=1, description="Rollouts of the adversary per turn, the protagonist fixed."
    )
    adversary_learning_rate: float | None = Field(
        None, gt=0, description="The adversary's Adam step size (None: method.learning_rate's)."
    )

    @field_validator("budget")
    @classmethod
    def _not_below_zero(cls, value: ScheduleOrValue) -> ScheduleOrValue:
        low = min(value.start, value.end) if isinstance(value, Schedule) else value
        if low < 0:
            raise ValueError(f"budget must be >= 0 (no push at 0), got {low}")
        return value

    module: ClassVar[str] = "mentor.methods.rarl"
    supported_actions: ClassVar = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
    action_masks: ClassVar = False


class ESConfig(MethodSection):
    """Step 6 without gradients of a loss: evolution strategies search the policy's weights
    (``mentor/methods/es.py``): OpenAI-ES (Salimans et al. 2017) or CMA-ES (Hansen 2001)."""

    name: Literal["es"] = Field("es", description="The method.")
    algorithm: Literal["openai", "cma"] = Field(
        "openai",
        description="openai: antithetic pairs from a shared noise table, centered ranks, Adam "
        "with weight decay. cma: CMA-ES (the cmaes package), for small policies.",
    )
    population: int = Field(
        50, ge=2, description="Members a generation (openai: an even number, pairs theta ± eps)."
    )
    noise_std: float = Field(
        0.02, gt=0, description="sigma: the perturbations' scale (cma: its initial step size)."
    )
    learning_rate: float = Field(0.01, gt=0, description="openai: Adam's step size.")
    weight_decay: float = Field(
        0.005, ge=0, description="openai: L2 coefficient on the weights in each step."
    )
    episodes_per_member: int = Field(
        1, ge=1, description="Episodes each member plays; its fitness is their mean return."
    )
    noise_table_size: int = Field(
        2**22, ge=1, description="openai: normal numbers in the shared noise table (4 bytes each)."
    )

    module: ClassVar[str] = "mentor.methods.es"
    supported_actions: ClassVar = ("Discrete", "Box")
    exploration: ClassVar = ()

    def check(self, experiment: Experiment) -> None:
        if self.algorithm == "openai" and self.population % 2:
            raise ValueError(
                f"method.population {self.population}: openai plays antithetic pairs "
                "(theta + eps, theta - eps), so it must be even"
            )


class ReptileConfig(MethodSection):
    """Step 6 across tasks: first-order meta-learning of a policy's initial weights, Reptile
    (Nichol et al. 2018) or first-order MAML (Finn et al. 2017), ``mentor/methods/reptile.py``."""

    name: Literal["reptile"] = Field("reptile", description="The method.")
    algorithm: Literal["reptile", "fomaml"] = Field(
        "reptile",
        description="reptile: theta += meta_learning_rate * mean(phi_i - theta). fomaml: theta "
        "-= meta_learning_rate * mean(gradient of task i's loss at phi_i, on new episodes).",
    )
    params: dict[str, list[float]] | None = Field(
        None,
        description="The task distribution: {name: [low, high]} uniform ranges over the env's "
        "parameters (PointNav's goal_x, goal_y; CartPole's length), one draw per task. None: "
        "every task is the env as made.",
    )
    inner_steps: int = Field(1, description="Policy-gradient steps adapting to one task (>= 1).")
    inner_episodes: int = Field(2, ge=1, description="Episodes played for each inner step.")
    inner_learning_rate: float = Field(0.1, gt=0, description="SGD step size of the inner loop.")
    meta_learning_rate: ScheduleOrValue = Field(
        0.5,
        description="The outer step size (Reptile's epsilon, FOMAML's beta), a number or a "
        "schedule over the budget (Reptile anneals it linearly to 0).",
    )
    meta_batch: int = Field(10, ge=1, description="Tasks per outer step.")
    query_episodes: int = Field(
        2, ge=1, description="fomaml: new episodes with the adapted weights for the outer gradient."
    )
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor of the returns-to-go.")
    max_grad_norm: float | None = Field(
        1.0,
        gt=0,
        description="Clip each policy gradient (an inner step's, FOMAML's outer one) to this "
        "norm (None: off).",
    )

    _positive = field_validator("meta_learning_rate")(positive_start)

    module: ClassVar[str] = "mentor.methods.reptile"
    supported_actions: ClassVar = ("Discrete", "Box")

    @field_validator("params")
    @classmethod
    def _ranges(cls, value: dict[str, list[float]] | None) -> dict[str, list[float]] | None:
        """Each range [low, high], finite, low <= high (``envs.meta.check_ranges``'s rules,
        checked here too so a bad range is refused before a run folder is made)."""
        if value is None:
            return None
        if not value:
            raise ValueError(
                "method.params is empty; give {name: [low, high]} for each parameter the tasks "
                "differ in, or null for the env as made"
            )
        for name, bounds in value.items():
            if len(bounds) != 2:
                raise ValueError(f"method.params.{name} is {bounds}, not [low, high]")
            low, high = bounds
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise ValueError(f"method.params.{name} [{low:g}, {high:g}] is an empty range; "
                                 "give finite bounds with low <= high")  # fmt: skip
        return value

    @field_validator("inner_steps")
    @classmethod
    def _adapts(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                f"method.inner_steps is {value}: Reptile and first-order MAML adapt to each task "
                "by at least one inner step; give inner_steps >= 1"
            )
        return value


class OptionCriticConfig(MethodSection):
    """Step 6 with temporal abstraction: option-critic (Bacon, Harb & Precup 2017,
    ``mentor/methods/option_critic.py``): options with intra-option policies and learned
    terminations, chosen epsilon-greedily (exploration.epsilon) on a critic over options."""

    name: Literal["option_critic"] = Field("option_critic", description="The method.")
    num_options: int = Field(4, ge=1, description="Options: each a policy and a termination.")
    learning_rate: ScheduleOrValue = Field(1e-3, description="Adam step size, number or schedule.")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    termination_reg: float = Field(
        0.01,
        ge=0,
        description="xi, the deliberation cost (Harb et al. 2018) added to the termination "
        "advantage: larger keeps options on longer (0: the paper's plain gradient).",
    )
    critic_coef: float = Field(1.0, gt=0, description="Weight of the critic's TD loss.")
    termination_coef: float = Field(1.0, gt=0, description="Weight of the termination loss.")
    target_update_freq: int | None = Field(
        None,
        ge=1,
        description="Env steps between copies of the critic into a target network that the "
        "TD targets read (None: no target network; the online critic's values, detached).",
    )
    max_grad_norm: float | None = Field(
        None, gt=0, description="Clip the global gradient norm (None: off)."
    )
    adam_eps: float = Field(1e-8, gt=0, description="Adam's epsilon.")

    _positive = field_validator("learning_rate")(positive_start)

    module: ClassVar[str] = "mentor.methods.option_critic"
    supported_actions: ClassVar = ("Discrete",)
    exploration: ClassVar = ("epsilon", "entropy_coef")


class FederatedClient(Section):
    """One federated client's private env: the run's env with its own parameters or kwargs,
    or an env of its own with the same spaces."""

    params: dict[str, float] = Field(
        default_factory=dict,
        description="Env parameters set on each of its copies (env.unwrapped.NAME: CartPole's "
        "length, Pendulum's m), as curriculum.randomize sets them.",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of its env, over env.kwargs."
    )
    env: str | None = Field(None, description="An env id of its own (None: env.id).")
    steps: int | None = Field(
        None, ge=1, description="Its local env steps a round (None: method.local_steps)."
    )


class FedAvgConfig(PPOConfig):
    """Step 6 across private envs: federated averaging (McMahan et al. 2017) of PPO clients
    (``mentor/methods/fedavg.py``); weights travel, experience never does."""

    name: Literal["fedavg"] = Field("fedavg", description="The method.")  # type: ignore[assignment]
    exploration: ClassVar = ("entropy_coef",)  # clients' rollouts have no gSDE
    recurrent: ClassVar = False
    action_masks: ClassVar = False
    clients: list[FederatedClient] = Field(
        default_factory=list,
        description="The clients, two or more: [{params: {length: 0.25}}, {params: {length: "
        "1.0}}, ...], each with its own variant of the env.",
    )
    local_steps: int = Field(
        2048, ge=1, description="Env steps each client trains a round (E), rounded up to whole "
        "rollouts (env.num_envs x num_steps).",
    )  # fmt: skip
    secure_aggregation: bool = Field(
        False, description="Pairwise masks that cancel in the sum: the server sees only it."
    )
    dp_clip: float | None = Field(
        None, gt=0, description="Differential privacy: clip each client's update to this L2 "
        "norm, every client counting once (None: off).",
    )  # fmt: skip
    dp_noise: float = Field(
        0.0, ge=0, description="Differential privacy: the noise multiplier z (Gaussian noise of "
        "std z x dp_clip on the sum of the updates).",
    )  # fmt: skip
    dp_delta: float = Field(1e-5, gt=0, lt=1, description="The delta of the reported epsilon.")
    matrix_episodes: int = Field(
        10, ge=0, description="Episodes of each model on each client's variant at the end "
        "(federation.json, the report); 0: none.",
    )  # fmt: skip

    module: ClassVar[str] = "mentor.methods.fedavg"
    supported_actions: ClassVar = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")

    def check(self, experiment: Experiment) -> None:
        super().check(experiment)
        if len(self.clients) < 2:
            raise ValueError(
                f"method.clients has {len(self.clients)} client(s): federated averaging needs "
                "two or more, each with its own env variant ([{params: {length: 0.25}}, "
                "{params: {length: 1.0}}]); one client is plain training (method.name=ppo)"
            )
        if self.dp_noise > 0 and self.dp_clip is None:
            raise ValueError(
                "method.dp_noise without method.dp_clip: the noise is scaled to the clip norm; "
                "give both"
            )
        if experiment.env.normalize_obs or self.value_norm:
            raise ValueError(
                "fedavg averages weights only: env.normalize_obs and method.value_norm keep "
                "running statistics of each client's data, which it would not share; turn them off"
            )
        if experiment.agent.network.memory is not None:
            raise ValueError("fedavg: clients train feed-forward policies (agent.network.memory "
                             "is not supported yet)")  # fmt: skip


# --- the registry ------------------------------------------------------------------------------

# One entry per method: everything else that lists methods is derived from this tuple.
METHODS: tuple[type[MethodSection], ...] = (
    PPOConfig,
    IPPOConfig,
    MAPPOConfig,
    DQNConfig,
    SACConfig,
    TD3Config,
    BCConfig,
    DAggerConfig,
    GAILConfig,
    RARLConfig,
    ESConfig,
    FedAvgConfig,
    ReptileConfig,
    OptionCriticConfig,
)


def _registered(methods: tuple[type[MethodSection], ...]) -> dict[str, type[MethodSection]]:
    """name -> config class; refuses a class that lacks what a method must declare."""
    presets = resources.files("mentor") / "presets"
    out: dict[str, type[MethodSection]] = {}
    for cls in methods:
        name = cls.model_fields["name"].default
        missing = [
            what
            for what, ok in (
                ("a default for its 'name' field", isinstance(name, str)),
                ("a module (ClassVar 'module')", isinstance(getattr(cls, "module", None), str)),
                ("supported action spaces", bool(getattr(cls, "supported_actions", ()))),
                (f"a preset file presets/{name}.yaml", (presets / f"{name}.yaml").is_file()),
            )
            if not ok
        ]
        if missing:
            raise TypeError(
                f"method config {cls.__name__} is registered without {', '.join(missing)}"
            )
        if name in out:
            raise TypeError(f"method name '{name}' is registered twice ({out[name].__name__})")
        out[name] = cls
    return out


METHOD_CONFIGS: dict[str, type[MethodSection]] = _registered(METHODS)
# The experiment's method section: one of the registered configs, chosen by its name.
MethodConfig = Annotated[Union[METHODS], Field(discriminator="name")]  # noqa: UP007


def method_config(name: str) -> type[MethodSection]:
    """The config class of a method; a ConfigError with close matches for an unknown name."""
    if name not in METHOD_CONFIGS:
        raise ConfigError(
            f"unknown method '{name}'"
            + did_you_mean(name, METHOD_CONFIGS)
            + f"; methods: {', '.join(METHOD_CONFIGS)}"
        )
    return METHOD_CONFIGS[name]


def method_module(name: str) -> ModuleType:
    """The module of a method (imported on first use: it imports torch)."""
    return importlib.import_module(method_config(name).module)


def check_supported(method: str, action_space: object) -> None:
    """Refuse an action space the method cannot act in, naming the methods (of the same kind,
    single- or multi-agent) that can."""
    kind = type(action_space).__name__
    config = method_config(method)
    supported = config.supported_actions
    if kind not in supported:
        able = [
            name
            for name, cfg in METHOD_CONFIGS.items()
            if kind in cfg.supported_actions and cfg.multi_agent == config.multi_agent
        ]
        raise ConfigError(
            f"method {method} does not support the action space {action_space} ({kind}); "
            f"{method} supports {', '.join(supported)}"
            + (f"; methods that support {kind}: {', '.join(able)}" if able else "")
        )


def check_agents(method: str, env_id: str, multi_agent_env: bool, selfplay: bool = False) -> None:
    """Refuse a multi-agent env to a single-agent method and the reverse, naming the methods
    that fit. With ``selfplay``, the env must be a game (multi-agent), and a single-agent
    method trains the learner's seat in it."""
    config = method_config(method)
    if selfplay:
        if not multi_agent_env:
            raise ConfigError(
                f"selfplay: env '{env_id}' is a single-agent Gymnasium env; self-play needs a "
                "game of several agents (a PettingZoo env, such as "
                "pettingzoo.classic.connect_four_v3)"
            )
        return
    if config.multi_agent == multi_agent_env:
        return
    fit = [name for name, cfg in METHOD_CONFIGS.items() if cfg.multi_agent == multi_agent_env]
    if multi_agent_env:
        raise ConfigError(
            f"method {method} trains one agent, and env '{env_id}' is a multi-agent "
            f"(PettingZoo) env; methods for multi-agent envs: {', '.join(fit)}"
        )
    raise ConfigError(
        f"method {method} trains the agents of a multi-agent (PettingZoo) env, and env "
        f"'{env_id}' is a single-agent Gymnasium env; methods for it: {', '.join(fit)}"
    )


def check_masks_honoured(method: str, env_id: str, source: str) -> None:
    """Refuse to train a method that would ignore the env's action masks, naming those that
    honour them (``source``: "obs" or "info", where the env gives them)."""
    config = method_config(method)
    if config.action_masks:
        return
    able = [
        name
        for name, cfg in METHOD_CONFIGS.items()
        if cfg.action_masks and cfg.multi_agent == config.multi_agent
    ]
    where = "observation" if source == "obs" else "info"
    raise ConfigError(
        f"env '{env_id}' gives action masks ({where}['action_mask']), which method "
        f"{method} does not honour: it would learn and act as if every action were allowed; "
        f"methods that honour action masks: {', '.join(able)}"
    )
