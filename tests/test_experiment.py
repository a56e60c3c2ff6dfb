"""Tests of the experiment file: defaults, YAML in and out, overrides, presets, and the errors a
bad file or override gets (FAULT-20, FAULT-21, FAULT-22 in /work/shared/FAULTS.md)."""

from __future__ import annotations

import re

import pytest
import yaml

from mentor.errors import ConfigError
from mentor.experiment import (
    Experiment,
    PPOConfig,
    Schedule,
    apply_overrides,
    available_presets,
    build,
    describe_defaults,
    load_yaml,
    parse,
    preset,
    required_fields,
)


def test_defaults_validate_and_equal_an_empty_file() -> None:
    experiment = parse({})
    assert experiment == Experiment()
    assert experiment.run_name == "ppo-CartPole-v1"
    assert experiment.method.learning_rate == pytest.approx(3e-4)
    assert experiment.env.num_envs * experiment.method.num_steps == 1024


def test_run_name_is_a_folder_name_for_entry_points_and_namespaced_ids() -> None:
    assert parse({"env": {"id": "pkg.mod:MyEnv"}}).run_name == "ppo-pkg.mod_MyEnv"
    assert parse({"env": {"id": "ALE/Pong-v5"}}).run_name == "ppo-ALE_Pong-v5"
    assert parse({"name": "mine"}).run_name == "mine"
    spread = {"env": {"id": "mpe2.simple_spread_v3"}, "method": {"name": "mappo"}}
    assert parse(spread).run_name == "mappo-simple_spread_v3"  # a PettingZoo module: its name


def test_yaml_round_trip_gives_an_equal_experiment() -> None:
    experiment = build(
        method="ppo",
        env_id="CartPole-v1",
        overrides=[
            "seed=7",
            "env.kwargs={sutton_barto_reward: true}",
            "exploration.entropy_coef={kind: cosine, start: 0.01, end: 0.001, fraction: 0.5}",
            "stopping.plateau={window: 6}",
            "agent.network.hidden_sizes=[32, 16]",
        ],
    )
    text = experiment.to_yaml()
    again = parse(yaml.safe_load(text))
    assert again == experiment
    assert isinstance(again.method.learning_rate, Schedule)  # the preset's schedule survives
    assert again.exploration.entropy_coef == Schedule(
        kind="cosine", start=0.01, end=0.001, fraction=0.5
    )
    assert again.to_yaml() == text


def test_yaml_file_round_trip(tmp_path) -> None:
    experiment = build(overrides=["method.num_epochs=3", "name=from-file"])
    file = tmp_path / "experiment.yaml"
    file.write_text(experiment.to_yaml())
    assert build(file=file) == experiment


def test_overrides_set_nested_keys_with_yaml_typed_values() -> None:
    base = {"method": {"gamma": 0.9}}
    data = apply_overrides(
        base,
        [
            "method.learning_rate=3e-4",
            "agent.network.hidden_sizes=[32,32]",
            "env.normalize_obs=true",
            "env.kwargs.render_mode=rgb_array",
            "stopping.total_steps=1e5",
            "stopping.max_seconds=null",
        ],
    )
    assert data["method"] == {"gamma": 0.9, "learning_rate": 3e-4}
    assert isinstance(data["method"]["learning_rate"], float)
    assert data["agent"]["network"]["hidden_sizes"] == [32, 32]
    assert data["env"] == {"normalize_obs": True, "kwargs": {"render_mode": "rgb_array"}}
    assert data["stopping"] == {"total_steps": 1e5, "max_seconds": None}
    assert base == {"method": {"gamma": 0.9}}, "the input dict must not change"
    experiment = parse(data)
    assert experiment.stopping.total_steps == 100_000
    assert experiment.agent.network.hidden_sizes == [32, 32]


def test_yaml_file_reads_exponent_numbers_as_numbers(tmp_path) -> None:
    file = tmp_path / "experiment.yaml"
    file.write_text("method:\n  learning_rate: 3e-4\nstopping:\n  total_steps: 5e4\n")
    experiment = build(file=file)
    assert experiment.method.learning_rate == pytest.approx(3e-4)
    assert experiment.stopping.total_steps == 50_000


def test_later_override_wins_and_a_value_replaces_a_schedule() -> None:
    experiment = build(overrides=["method.gamma=0.5", "method.gamma=0.25"])
    assert experiment.method.gamma == 0.25
    # The CartPole preset's learning rate is a schedule; a number replaces it whole.
    experiment = build(method="ppo", env_id="CartPole-v1", overrides=["method.learning_rate=0.01"])
    assert experiment.method.learning_rate == 0.01


@pytest.mark.parametrize("override", ["method.gamma", "=3", " =3"])
def test_malformed_override_is_a_config_error(override: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"override '{override}' is not of the form section.key=value")
    ):
        build(overrides=[override])


def test_override_through_a_value_names_the_value() -> None:
    with pytest.raises(ConfigError, match=r"'gamma' is a value, not a section"):
        apply_overrides({"method": {"gamma": 0.9}}, ["method.gamma.start=1"])


@pytest.mark.parametrize(
    ("override", "path", "suggestion"),
    [
        ("method.learning_rat=0.001", "method.learning_rat", "learning_rate"),
        ("env.num_env=4", "env.num_env", "num_envs"),
        ("agent.network.hiden_sizes=[8]", "agent.network.hiden_sizes", "hidden_sizes"),
        ("stoping.total_steps=10", "stoping", "stopping"),
    ],
)
def test_fault_21_unknown_key_names_the_path_and_suggests(
    override: str, path: str, suggestion: str
) -> None:
    """FAULT-21: a misspelled key is an error with its dotted path and a did-you-mean."""
    with pytest.raises(
        ConfigError, match=rf"unknown key '{re.escape(path)}' \(did you mean: {suggestion}\?\)"
    ):
        build(overrides=[override])


def test_fault_21_unknown_key_lists_the_valid_keys_when_nothing_is_close() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'logging\.zzz'; valid keys here: csv, "):
        build(overrides=["logging.zzz=1"])


def test_fault_21_unknown_key_in_a_file_names_the_file(tmp_path) -> None:
    file = tmp_path / "exp.yaml"
    file.write_text("method:\n  gae_lamda: 0.9\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: unknown key 'method\.gae_lamda'") as info:
        build(file=file)
    assert "did you mean: gae_lambda?" in str(info.value)


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        (
            "method.learning_rate=0",
            r"'method\.learning_rate' = 0: learning_rate must be > 0, got 0\.0",
        ),
        ("method.learning_rate=-1e-3", r"'method\.learning_rate' = -0\.001: .*must be > 0"),
        ("method.clip_coef=0", r"'method\.clip_coef' = 0: clip_coef must be > 0"),
        ("method.gamma=1.5", r"'method\.gamma' = 1\.5: Input should be less than or equal to 1"),
        ("method.gae_lambda=-0.1", r"'method\.gae_lambda' = -0\.1: .*greater than or equal to 0"),
        ("env.num_envs=0", r"'env\.num_envs' = 0: Input should be greater than or equal to 1"),
        ("validation.episodes=0", r"'validation\.episodes' = 0: .*greater than or equal to 1"),
        ("method.adam_eps=0", r"'method\.adam_eps' = 0: Input should be greater than 0"),
        ("agent.network.hidden_sizes=[64, 0]", r"'agent\.network': hidden_sizes must all be >= 1"),
        ("env.vectorization=threads", r"'env\.vectorization' = 'threads': .*'auto', 'native'"),
        ("method.num_steps=many", r"'method\.num_steps' = 'many': Input should be a valid integer"),
    ],
)
def test_fault_20_out_of_range_value_names_field_value_and_bound(
    override: str, pattern: str
) -> None:
    """FAULT-20: a bad value is a ConfigError (a ValueError, never an assert) naming the field,
    the value and what is allowed."""
    with pytest.raises(ConfigError, match=pattern) as info:
        build(overrides=[override])
    assert isinstance(info.value, ValueError)


def test_info_keys_are_a_list_of_names_with_aggregations_or_a_mapping() -> None:
    listed = build(overrides=["env.info_keys=[is_success, {cost: sum}]"]).env.info_keys
    assert listed == {"is_success": "last", "cost": "sum"}
    assert build(overrides=["env.info_keys={is_success: last, cost: sum}"]).env.info_keys == listed
    assert build(overrides=["env.info_keys.cost=sum"]).env.info_keys == {"cost": "sum"}
    resolved = build(overrides=["env.info_keys=[is_success, {cost: sum}]"]).to_yaml()
    assert parse(yaml.safe_load(resolved)).env.info_keys == listed  # experiment.yaml reads back


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (
            "[is_success, {cost: mean}]",
            r"key 'cost': aggregation 'mean' is not allowed; use last "
            r"\(the value in the info of the episode's last step\) or sum \(the sum over",
        ),
        ("[3]", r"entry 3 is neither a key name nor one \{name: aggregation\}"),
        ("[{a: sum, b: last}]", r"entry \{'a': 'sum', 'b': 'last'\} is neither"),
        ("[_cost]", r"key '_cost' is not an info key name .*Gymnasium's masks"),
        ("[ep_return]", r"key 'ep_return' would share its summary columns"),
        ("[cost, {cost: sum}]", r"key 'cost' is declared twice"),
        ("cost", r"expected a list of key names .*or a mapping"),
    ],
)
def test_a_bad_info_keys_entry_is_named_with_what_is_allowed(value: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=r"'env\.info_keys'.*: " + pattern):
        build(overrides=[f"env.info_keys={value}"])


def test_fault_20_rollout_not_divisible_by_minibatches_names_the_numbers() -> None:
    """FAULT-20: 8 envs * 32 steps = 256 does not split into 3 minibatches."""
    with pytest.raises(
        ConfigError,
        match=r"env\.num_envs \* method\.num_steps = 8 \* 32 = 256 steps does not split into "
        r"method\.num_minibatches = 3 equal minibatches",
    ):
        build(method="ppo", env_id="CartPole-v1", overrides=["method.num_minibatches=3"])
    # The same numbers split when they divide: 256 into 4.
    assert build(overrides=["method.num_minibatches=4", "method.num_steps=32"])


def test_fault_20_several_errors_are_reported_together() -> None:
    with pytest.raises(ConfigError, match=r"'env\.num_envs' = 0: .*; 'method\.gamma' = 2: "):
        build(overrides=["method.gamma=2", "env.num_envs=0"])


@pytest.mark.parametrize("key", ["freeze", "init_layers"])
def test_fault_22_freeze_or_init_layers_without_init_is_an_error(key: str) -> None:
    """FAULT-22: freezing or loading layers needs a checkpoint to load them from."""
    with pytest.raises(ConfigError, match=rf"agent\.{key}.* need agent\.init to name a checkpoint"):
        build(overrides=[f"agent.{key}=[actor]"])
    experiment = build(overrides=[f"agent.{key}=[actor]", "agent.init=runs/previous"])
    assert getattr(experiment.agent, key) == ["actor"]


def test_assignment_is_validated() -> None:
    experiment = Experiment()
    with pytest.raises(ValueError, match="less than or equal to 1"):
        experiment.method.gamma = 1.5
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        experiment.method.learning_rate = 0.0


def test_schedules_validate() -> None:
    linear = build(overrides=["method.learning_rate={kind: linear, start: 1e-3, fraction: 0.5}"])
    assert linear.method.learning_rate == Schedule(kind="linear", start=1e-3, end=0.0, fraction=0.5)
    exponential = build(
        overrides=["method.learning_rate={kind: exponential, start: 1e-3, end: 1e-5}"]
    )
    assert exponential.method.learning_rate.kind == "exponential"

    with pytest.raises(
        ConfigError,
        match=r"'method\.learning_rate': an exponential schedule needs start > 0 and end > 0, "
        r"got start=0\.0, end=1e-05",
    ) as info:
        build(overrides=["method.learning_rate={kind: exponential, start: 0, end: 1e-5}"])
    assert "valid number" not in str(info.value), "the number branch of the union is noise here"
    with pytest.raises(ConfigError, match=r"got start=0\.001, end=0\.0"):
        build(overrides=["method.learning_rate={kind: exponential, start: 1e-3}"])
    with pytest.raises(ConfigError, match=r"fraction' = 0: Input should be greater than 0"):
        build(overrides=["method.clip_coef={start: 0.2, fraction: 0}"])
    with pytest.raises(ConfigError, match=r"'linear', 'exponential' or 'cosine'"):
        build(overrides=["method.clip_coef={kind: quadratic, start: 0.2}"])
    with pytest.raises(ConfigError, match=r"'method\.clip_coef\.start' is required"):
        build(overrides=["method.clip_coef={kind: linear}"])
    with pytest.raises(ConfigError, match=r"learning_rate must be > 0, got -0\.1"):
        build(overrides=["method.learning_rate={start: -0.1, end: 0.0}"])


def test_build_applies_the_shipped_preset() -> None:
    shipped = available_presets()["ppo"]["CartPole-v1"]
    experiment = build(method="ppo", env_id="CartPole-v1")
    assert experiment.method.num_steps == shipped["method"]["num_steps"] != PPOConfig().num_steps
    assert experiment.method.num_epochs == shipped["method"]["num_epochs"]
    assert experiment.method.gamma == shipped["method"]["gamma"]
    assert experiment.method.learning_rate == Schedule(**shipped["method"]["learning_rate"])
    assert experiment.stopping.target_return == shipped["stopping"]["target_return"]
    assert experiment.env.id == "CartPole-v1"
    # An env without a preset gets the defaults, with its id.
    plain = build(method="ppo", env_id="MountainCarContinuous-v0")
    assert plain.method == PPOConfig()
    assert plain.env.id == "MountainCarContinuous-v0"
    # Overrides apply on top of the preset.
    assert build(method="ppo", env_id="CartPole-v1", overrides=["method.num_steps=64"]).method == (
        experiment.method.model_copy(update={"num_steps": 64})
    )


def test_preset_with_an_unknown_method_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown method 'ppx' \(did you mean: ppo\?\)"):
        preset("ppx", "CartPole-v1")
    with pytest.raises(ConfigError, match=r"unknown method 'ppx'"):
        build(method="ppx", env_id="CartPole-v1")
    assert preset("ppo", "NoSuchEnv-v0") == {}


def test_preset_is_a_copy() -> None:
    preset("ppo", "CartPole-v1")["method"]["num_steps"] = 1
    assert preset("ppo", "CartPole-v1")["method"]["num_steps"] != 1


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("- ppo\n- CartPole-v1\n", r"expected a mapping of sections, got list"),
        ("just a string\n", r"expected a mapping of sections, got str"),
        ("method: {gamma: 0.9\n", r"line 2, column 1: not valid YAML: expected ',' or '}'"),
        ("method:\n  gamma: 0.9\n bad indent: 1\n", r"line 3, column 2: not valid YAML"),
        ("!!python/object/apply:os.system ['echo hacked']\n", r"line 1, column 1: not valid YAML"),
    ],
    ids=["list", "scalar", "unclosed-brace", "bad-indent", "python-tag"],
)
def test_a_file_that_is_not_an_experiment_is_a_config_error(tmp_path, text, pattern) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=rf"bad\.yaml: {pattern}"):
        load_yaml(file)


@pytest.mark.parametrize("text", ["", "   \n\n", "# nothing set\n"])
def test_an_empty_file_is_an_error_not_the_default_run(tmp_path, text: str) -> None:
    """Issue 10: an empty file used to train the whole default run with exit 0."""
    file = tmp_path / "empty.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=r"empty\.yaml: the file is empty; an experiment file"):
        build(file=file)


def test_a_yaml_error_is_one_line_naming_the_file_line_and_column(tmp_path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("seed: 1\nenv: {id: CartPole-v1\nmethod: x\n")
    with pytest.raises(ConfigError) as error:
        load_yaml(file)
    message = str(error.value)
    assert "\n" not in message and "<unicode string>" not in message
    assert message == (
        f"{file}: line 3, column 7: not valid YAML: expected ',' or '}}', but got ':' "
        "(while parsing a flow mapping at line 2, column 6)"
    )


def test_a_missing_file_is_a_config_error(tmp_path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"experiment file '.*nope\.yaml' does not exist"):
        build(file=missing)
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_yaml(tmp_path)  # a folder is not a file either


def test_parse_rejects_a_non_mapping() -> None:
    with pytest.raises(
        ConfigError, match=r"source\.yaml: expected a mapping of sections, got list"
    ):
        parse([1, 2], "source.yaml")  # type: ignore[arg-type]


def test_describe_defaults_mentions_every_section_and_field() -> None:
    text = describe_defaults()
    for section in Experiment.model_fields:
        assert f"\n{section}:" in f"\n{text}", section
    for field in ("gae_lambda", "num_minibatches", "every_steps", "hidden_sizes", "keep_best"):
        assert f"  {field}: " in text, field
    assert "gae_lambda: 0.95  # GAE's bias-variance trade-off." in text
    # The text is YAML whose values are the defaults.
    assert yaml.safe_load(text) == Experiment().model_dump(mode="json")


def test_every_shipped_preset_builds_a_valid_experiment() -> None:
    from mentor.experiment import available_presets

    presets = available_presets()
    assert {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"} <= set(presets["ppo"])
    for method, envs in presets.items():
        required = [f"{path}=given" for path in required_fields(method)]  # dagger's expert
        for env_id in envs:
            experiment = build(method=method, env_id=env_id, overrides=required)
            assert experiment.env.id == env_id and experiment.method.name == method


def test_an_override_inside_a_defaulted_section_keeps_the_other_defaults() -> None:
    experiment = build(
        method="dqn",
        env_id="mentor.envs.testing:DictObsEnv",
        overrides=["exploration.epsilon.fraction=0.3", "stopping.plateau.window=6"],
    )
    assert experiment.exploration.epsilon == Schedule(start=1.0, end=0.05, fraction=0.3)
    assert experiment.stopping.plateau.window == 6 and experiment.stopping.plateau.alpha == 0.05
