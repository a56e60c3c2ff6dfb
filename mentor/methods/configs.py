"""Every method's hyperparameters: one typed section per method, chosen by ``method.name``.

Torch-free on purpose: validating an experiment (and ``mentor --help``) must not import torch.
Each method file imports its config from here; ``supported_actions`` and ``exploration`` say
which action spaces the method handles and which ``exploration`` fields it reads.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from mentor.config import Schedule, ScheduleOrValue, Section, schedule_start
from mentor.errors import ConfigError


def positive_start(value: ScheduleOrValue, info: ValidationInfo) -> ScheduleOrValue:
    """A field validator (so the error's path names the field) for positive rates."""
    if schedule_start(value) <= 0:
        raise ValueError(f"{info.field_name} must be > 0, got {schedule_start(value)}")
    return value


class PPOConfig(Section):
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
    adam_eps: float = Field(1e-5, gt=0, description="Adam's epsilon.")

    _positive = field_validator("learning_rate", "clip_coef")(positive_start)

    supported_actions: ClassVar = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")
    exploration: ClassVar = ("entropy_coef",)


class OffPolicyConfig(Section):
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

    supported_actions: ClassVar = ("Discrete",)
    exploration: ClassVar = ("epsilon",)


class SACConfig(OffPolicyConfig):
    """Step 6: Soft Actor-Critic (Haarnoja et al. 2018) with twin critics and automatic entropy
    tuning; discrete actions as in Christodoulou 2019."""

    name: Literal["sac"] = Field("sac", description="The method.")
    target_update_freq: int = Field(
        1, ge=1, description="Gradient steps between Polyak target updates."
    )

    supported_actions: ClassVar = ("Box", "Discrete")
    exploration: ClassVar = ("alpha", "alpha_init", "target_entropy")


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

    supported_actions: ClassVar = ("Box",)
    exploration: ClassVar = ("action_noise",)


class BCConfig(Section):
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
    policy_of: Literal["ppo", "sac"] = Field(
        "ppo",
        description="Whose networks BC trains (the policy part), so that method can start "
        "from the result with agent.init: ppo (actor-critic) or sac (squashed Gaussian actor).",
    )

    supported_actions: ClassVar = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")
    exploration: ClassVar = ()


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


class GAILConfig(PPOConfig):
    """Step 6 from demonstrations: generative adversarial imitation (Ho & Ermon 2016). A
    discriminator tells expert (observation, action) pairs from the policy's; its output is the
    reward of a PPO update (mentor's, called, not subclassed)."""

    name: Literal["gail"] = Field("gail", description="The method.")  # type: ignore[assignment]
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

    @property
    def uses_absorbing(self) -> bool:
        return self.reward == "airl" if self.absorbing is None else self.absorbing


def check_supported(method: str, action_space: object) -> None:
    """Refuse an action space the method cannot act in, naming the methods that can."""
    kind = type(action_space).__name__
    if kind not in METHOD_CONFIGS[method].supported_actions:
        able = [name for name, cfg in METHOD_CONFIGS.items() if kind in cfg.supported_actions]
        raise ConfigError(
            f"method {method} does not support the action space {action_space} ({kind}); "
            f"{method} supports {', '.join(METHOD_CONFIGS[method].supported_actions)}"
            + (f"; methods that support {kind}: {', '.join(able)}" if able else "")
        )


MethodConfig = Annotated[
    PPOConfig | DQNConfig | SACConfig | TD3Config | BCConfig | DAggerConfig | GAILConfig,
    Field(discriminator="name"),
]
METHOD_CONFIGS: dict[str, type[Section]] = {
    "ppo": PPOConfig,
    "dqn": DQNConfig,
    "sac": SACConfig,
    "td3": TD3Config,
    "bc": BCConfig,
    "dagger": DAggerConfig,
    "gail": GAILConfig,
}
# Methods that learn from a dataset (the experiment's data section) rather than from reward.
FROM_DATA = ("bc", "dagger", "gail")
