"""Why an agent acts as it does: each decision's chosen action, and its value, attributed to the
observation's features by integrated gradients (Sundararajan, Taly & Yan 2017), computed by
captum (``mentor explain RUN``, ``mentor.explain(...)``).

    play        the agent's deterministic policy for ``episodes`` episodes of its validation env
                (one copy, seeded); each decision's observation and action kept (at most
                ``max_decisions``; for images, that many frames evenly spread)
    targets     Discrete actions: the chosen action's score (its logit; DQN's Q-value); Box: each
                action dimension's deterministic value in the env's units; and the state's value
                V(s) where the network has a critic of the state alone (PPO's)
    baseline    ``mean``: the mean observation of the decisions played (a typical state, the
                default for vectors); ``zeros``: all zeros (a black frame, the default for images)
    attribute   the path integral from the baseline to each observation in ``steps`` points;
                completeness (the attributions sum to f(obs) - f(baseline)) is checked for every
                decision and its worst relative error reported (relative to the decision's change,
                or to 1% of the largest change where it is smaller): above 1%, take more steps
    features    named from the env: a ``feature_names`` attribute on it, else from its space (a
                Dict's keys, ``key[i]``; a Discrete's one-hot, ``key=v``), else ``obs[i]``; for
                an agent cloned from a table, the table's observation columns
    images      saliency: the attributions' absolute values summed over channels, per pixel

Written to ``RUN/explain/``: ``explain.json`` (every decision's attributions), ``importance.png``
(mean |attribution| per feature, for the action and the value) and ``timeline.png`` (the first
episode's attributions, decision by decision), or ``saliency.png`` for images; ``mentor report``
shows them in its "Explanations" section.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from mentor.agent import Agent
from mentor.core.vec_env import VecEnv
from mentor.envs.resolve import make_env
from mentor.envs.spaces import MASK_KEY, is_image, observed_space
from mentor.errors import ConfigError, MissingPackageError
from mentor.evaluation.evaluate import run_episodes
from mentor.runs.folder import write_json

FOLDER = "explain"
BASELINES = ("mean", "zeros")
COMPLETENESS = 0.01  # the worst relative completeness error that is still an explanation
MAX_FRAMES = 32  # images: decisions explained, evenly spread over those played


def explain(
    run: str | Path,
    episodes: int = 5,
    seed: int = 0,
    baseline: str | None = None,
    steps: int = 50,
    max_decisions: int = 2000,
) -> dict[str, Any]:
    """Attribute an agent's decisions to its observations' features (module docstring); writes
    ``RUN/explain/`` and returns what ``explain.json`` holds, without the per-decision rows."""
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise MissingPackageError(
            "mentor explain needs the package captum, which is not installed here: "
            "pip install 'mentor[explain]'"
        ) from None
    for name, value, low in (("episodes", episodes, 1), ("steps", steps, 2),
                             ("max_decisions", max_decisions, 1)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"explain: {name} must be a whole number >= {low}, got {value!r}")
    if not (Path(run) / "manifest.json").is_file():
        raise ConfigError(f"explain: '{run}' is not a run folder (no manifest.json)")
    agent = Agent.load(run)
    policy = agent.policy
    image = is_image(agent.observation_space)
    baseline = baseline or ("zeros" if image else "mean")
    if baseline not in BASELINES:
        raise ConfigError(f"explain: baseline {baseline!r} is not one of {', '.join(BASELINES)}")
    refuse_unexplainable(agent)
    obs, actions, episode_of = play(agent, episodes, seed)
    keep = _spread(len(obs), MAX_FRAMES if image else max_decisions)
    obs, actions, episode_of = obs[keep], actions[keep], episode_of[keep]
    inputs = torch.as_tensor(obs, dtype=torch.float32)
    base = torch.zeros_like(inputs[:1]) if baseline == "zeros" else inputs.mean(0, keepdim=True)
    targets = explained_targets(agent, actions)
    for label, (forward, _) in targets.items():
        check_gradient_path(policy, forward, inputs[:1], label)
    results: dict[str, dict[str, Any]] = {}
    for label, (forward, target) in targets.items():
        method = IntegratedGradients(forward)
        with torch.enable_grad():
            attributions, delta = method.attribute(
                inputs, baselines=base.expand_as(inputs), target=target, n_steps=steps,
                internal_batch_size=len(inputs), return_convergence_delta=True,
            )  # fmt: skip
            with torch.no_grad():
                start = _picked(forward(base.expand_as(inputs)), target)
                moved = _picked(forward(inputs), target) - start
        # relative to each decision's change, or to 1% of the largest where it is smaller
        scale = moved.abs().clamp(min=max(0.01 * float(moved.abs().max()), 1e-12))
        relative = delta.abs() / scale
        results[label] = {
            "attributions": attributions.detach().reshape(len(inputs), -1).numpy(),
            "worst_completeness_error": float(relative.max()),
            "median_completeness_error": float(relative.median()),
            "output_change": moved.detach().numpy(),
        }
    names = feature_names(agent)
    out = Path(run) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "run": str(run),
        "episodes": episodes,
        "seed": seed,
        "decisions": len(inputs),
        "baseline": baseline,
        "steps": steps,
        "features": names,
        "image": image,
        "targets": {
            label: {
                "worst_completeness_error": r["worst_completeness_error"],
                "median_completeness_error": r["median_completeness_error"],
                "mean_abs": _mean_abs(r["attributions"], names, image),
            }
            for label, r in results.items()
        },
    }
    rows = [
        {"episode": int(episode_of[i]), "action": actions[i].tolist(),
         **{label: r["attributions"][i].tolist() for label, r in results.items()}}
        for i in range(len(inputs))
    ] if not image else []  # fmt: skip
    write_json(out / "explain.json", {**summary, "decisions_explained": rows})
    if image:
        _plot_saliency(obs, results, out / "saliency.png")
    else:
        _plot_importance(summary, out / "importance.png")
        _plot_timeline(results, names, episode_of, actions, out / "timeline.png")
    worst = max(r["worst_completeness_error"] for r in results.values())
    summary["note"] = (
        f"completeness: attributions sum to the output's change within {worst:.2%} at worst"
        + ("" if worst <= COMPLETENESS else f" (above {COMPLETENESS:.0%}: take more --steps)")
    )
    return summary


def refuse_unexplainable(agent: Agent) -> None:
    if agent.agents is not None:
        raise ConfigError("explain: a multi-agent run's agents are not explained yet; "
                          "a single-agent run's are")  # fmt: skip
    if agent.recurrent:
        raise ConfigError("explain: a policy with memory acts on its whole history, which "
                          "attributions to one observation miss; not explained yet")  # fmt: skip
    kind = type(agent.action_space).__name__
    if not isinstance(agent.action_space, spaces.Discrete | spaces.Box):
        raise ConfigError(f"explain: {kind} actions are not explained yet; Discrete and Box are")


def play(agent: Agent, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The agent's deterministic decisions on one copy of its validation env: (observations,
    actions, episode of each)."""
    experiment = agent.experiment
    env = experiment.env
    env_id = experiment.validation.env.id or env.id
    kwargs = experiment.validation.env.kwargs
    kwargs = dict(env.kwargs if kwargs is None else kwargs)
    venv = VecEnv.make(env_id, kwargs, 1, vectorization="sync",
                       max_episode_steps=env.max_episode_steps,
                       preset=env.preset if env_id == env.id else None)  # fmt: skip
    seen: list[np.ndarray] = []
    chosen: list[np.ndarray] = []
    episode_of: list[int] = []
    acting = agent.player(venv, deterministic=True)
    started = [0]

    def recording(obs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        actions = acting(obs, mask)
        if venv.needs_reset[0]:  # this step resets the env: no decision of an episode
            started[0] += 1
        else:
            seen.append(np.array(obs[0]))
            chosen.append(np.array(actions[0]))
            episode_of.append(started[0])
        return actions

    try:
        run_episodes(recording, venv, episodes, seed)
    finally:
        venv.close()
    return np.stack(seen), np.stack(chosen), np.array(episode_of)


def explained_targets(
    agent: Agent, actions: np.ndarray
) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Any]]:
    """label -> (the function of a batch of observations captum differentiates, its target):
    the chosen action's score (Discrete), each action dimension (Box), the state's value."""
    policy = agent.policy
    targets: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Any]] = {}
    if isinstance(agent.action_space, spaces.Discrete):
        chosen = torch.as_tensor(actions, dtype=torch.long).reshape(-1)
        targets["action"] = (policy.policy_params, chosen)
    else:
        for dim in range(int(np.prod(agent.action_space.shape))):
            label = "action" if agent.action_space.shape == (1,) else f"action[{dim}]"
            targets[label] = (lambda x: policy.predict(x, True).reshape(len(x), -1), dim)
    value = getattr(policy, "value", None)
    if callable(value):  # a critic of the state alone (PPO's actor-critic)
        targets["value"] = (lambda x: value(x).reshape(len(x)), None)
    return targets


def check_gradient_path(
    policy: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, label: str
) -> None:
    """A clear error, naming the layer, when no gradient reaches the observation: the first
    layer whose input carries one and whose output does not."""
    calls: list[tuple[str, nn.Module, bool, bool]] = []

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            carried = any(isinstance(i, torch.Tensor) and i.requires_grad for i in inputs)
            kept = isinstance(output, torch.Tensor) and output.requires_grad
            calls.append((name, module, carried, kept))

        return record

    # With the weights' gradients off, a tensor requires one only through the observation.
    weights = [p for p in policy.parameters() if p.requires_grad]
    handles = [m.register_forward_hook(hook(n)) for n, m in policy.named_modules() if n]
    try:
        for p in weights:
            p.requires_grad_(False)
        with torch.enable_grad():
            out = forward(x.clone().requires_grad_(True))
    finally:
        for p in weights:
            p.requires_grad_(True)
        for handle in handles:
            handle.remove()
    if out.requires_grad:
        return
    cut = next(((n, m) for n, m, carried, kept in calls if carried and not kept), None)
    where = (f"layer '{cut[0]}' ({type(cut[1]).__name__}) takes a gradient in and gives none "
             "out") if cut else "no layer carries one from the observation"  # fmt: skip
    raise ConfigError(f"explain: no gradient reaches the observation from the {label}: {where}; "
                      "integrated gradients need a differentiable path")  # fmt: skip


def feature_names(agent: Agent) -> list[str]:
    """Names of the encoded observation's features (module docstring)."""
    experiment = agent.experiment
    columns = list(experiment.data.observation_columns or [])
    names = _space_names(observed_space(agent.observation_space), "obs")
    if experiment.method.needs_data and len(columns) == len(names):
        return columns
    try:
        with closing(make_env(experiment.env.id, experiment.env.kwargs)) as env:
            named = getattr(env.unwrapped, "feature_names", None)
    except Exception:  # an env that cannot be made here: names from its space
        named = None
    if named is not None and len(list(named)) == len(names):
        return [str(n) for n in named]
    return names


def _space_names(space: spaces.Space, prefix: str) -> list[str]:
    if isinstance(space, spaces.Dict):
        out: list[str] = []
        for key, sub in space.spaces.items():
            if key != MASK_KEY:
                out += _space_names(sub, key)
        return out
    if isinstance(space, spaces.Discrete):
        return [f"{prefix}={space.start + v}" for v in range(int(space.n))]
    if isinstance(space, spaces.MultiDiscrete):
        nvec = space.nvec.reshape(-1)
        return [f"{prefix}[{i}]={v}" for i, n in enumerate(nvec) for v in range(int(n))]
    size = int(np.prod(space.shape)) if space.shape else 1
    return [prefix] if size == 1 and prefix != "obs" else [f"{prefix}[{i}]" for i in range(size)]


def _picked(outputs: torch.Tensor, target: Any) -> torch.Tensor:
    if target is None:
        return outputs
    if isinstance(target, int):
        return outputs[:, target]
    return outputs.gather(1, target.reshape(-1, 1)).squeeze(1)


def _spread(n: int, most: int) -> np.ndarray:
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).round().astype(int)


def _mean_abs(attributions: np.ndarray, names: list[str], image: bool) -> dict[str, float]:
    if image:
        return {"pixels": float(np.abs(attributions).mean())}
    return {name: float(v) for name, v in zip(names, np.abs(attributions).mean(0), strict=True)}


def _plot_importance(summary: dict[str, Any], path: Path) -> None:
    labels = list(summary["targets"])
    names = summary["features"]
    figure = Figure(figsize=(6 + 2 * len(labels), 1.5 + 0.3 * len(names)))
    FigureCanvasAgg(figure)
    for index, label in enumerate(labels):
        ax = figure.add_subplot(1, len(labels), index + 1)
        values = [summary["targets"][label]["mean_abs"][n] for n in names]
        ax.barh(range(len(names)), values, color="tab:blue" if index == 0 else "tab:green")
        ax.set_yticks(range(len(names)), names if index == 0 else [])
        ax.invert_yaxis()
        ax.set_title(f"{label}: mean |attribution|")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _plot_timeline(results: dict[str, dict[str, Any]], names: list[str], episode_of: np.ndarray,
                   actions: np.ndarray, path: Path) -> None:  # fmt: skip
    first = episode_of == episode_of[0]
    figure = Figure(figsize=(10, 1.5 + 1.2 * len(results) + 0.2 * len(names) * len(results)))
    FigureCanvasAgg(figure)
    for index, (label, r) in enumerate(results.items()):
        ax = figure.add_subplot(len(results), 1, index + 1)
        values = r["attributions"][first].T
        bound = float(np.abs(values).max()) or 1.0
        shown = ax.imshow(values, aspect="auto", cmap="coolwarm", vmin=-bound, vmax=bound,
                          interpolation="nearest")  # fmt: skip
        ax.set_yticks(range(len(names)), names)
        ax.set_title(f"{label}, first episode, decision by decision (red: pushes it up)")
        figure.colorbar(shown, ax=ax)
    ax.set_xlabel("decision")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _plot_saliency(obs: np.ndarray, results: dict[str, dict[str, Any]], path: Path) -> None:
    shown = _spread(len(obs), 8)
    figure = Figure(figsize=(2.2 * len(shown), 2.4 * len(results)))
    FigureCanvasAgg(figure)
    for row, (label, r) in enumerate(results.items()):
        maps = np.abs(r["attributions"].reshape(obs.shape)).sum(-1)
        for col, i in enumerate(shown):
            ax = figure.add_subplot(len(results), len(shown), row * len(shown) + col + 1)
            ax.imshow(obs[i][..., -1], cmap="gray")
            ax.imshow(maps[i], cmap="inferno", alpha=0.55)
            ax.set_axis_off()
            ax.set_title(f"{label} #{i}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
