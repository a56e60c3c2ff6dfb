"""The experiment file: every section of the training workflow as a typed, validated model.

An experiment is YAML on disk and an ``Experiment`` in Python. Every field has a default and a
description; unknown keys are errors with a did-you-mean hint, and a bad value names the field,
the value and what is allowed. ``mentor show-defaults ppo`` prints the whole tree.

    schema.py    the sections and the Experiment
    methods.py   each method's section, and the registry of methods
    loading.py   files, presets and overrides in; commented YAML out

Torch-free: validating an experiment never imports torch.
"""

from mentor.experiment.loading import (
    REQUIRED,
    apply_overrides,
    available_presets,
    build,
    describe_defaults,
    load_yaml,
    merge,
    parse,
    preset,
    required_fields,
)
from mentor.experiment.methods import (
    METHOD_CONFIGS,
    METHODS,
    BCConfig,
    DAggerConfig,
    DQNConfig,
    ESConfig,
    GAILConfig,
    IPPOConfig,
    MAPPOConfig,
    MethodConfig,
    MethodSection,
    OffPolicyConfig,
    PPOConfig,
    SACConfig,
    TD3Config,
    check_agents,
    check_masks_honoured,
    check_supported,
    method_config,
    method_module,
)
from mentor.experiment.schema import (
    ActionNoiseConfig,
    AgentConfig,
    CheckpointConfig,
    DataConfig,
    EnvConfig,
    EvaluationConfig,
    Experiment,
    ExplorationConfig,
    LoggingConfig,
    PlateauConfig,
    StoppingConfig,
    ValidationConfig,
    ValidationEnvConfig,
)
from mentor.sections import NetworkConfig, Schedule, ScheduleOrValue, Section

__all__ = [
    "METHODS",
    "METHOD_CONFIGS",
    "REQUIRED",
    "ActionNoiseConfig",
    "AgentConfig",
    "BCConfig",
    "CheckpointConfig",
    "DAggerConfig",
    "DQNConfig",
    "DataConfig",
    "ESConfig",
    "EnvConfig",
    "EvaluationConfig",
    "Experiment",
    "ExplorationConfig",
    "GAILConfig",
    "IPPOConfig",
    "LoggingConfig",
    "MAPPOConfig",
    "MethodConfig",
    "MethodSection",
    "NetworkConfig",
    "OffPolicyConfig",
    "PPOConfig",
    "PlateauConfig",
    "SACConfig",
    "Schedule",
    "ScheduleOrValue",
    "Section",
    "StoppingConfig",
    "TD3Config",
    "ValidationConfig",
    "ValidationEnvConfig",
    "apply_overrides",
    "available_presets",
    "build",
    "check_agents",
    "check_masks_honoured",
    "check_supported",
    "describe_defaults",
    "load_yaml",
    "merge",
    "method_config",
    "method_module",
    "parse",
    "preset",
    "required_fields",
]
