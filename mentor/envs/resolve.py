"""Turn the env id of an experiment into a Gymnasium environment.

An id is either registered with Gymnasium (``CartPole-v1``, ``ALE/Pong-v5``, ``ale_py:ALE/Pong-v5``)
or an entry point ``package.module:ClassName`` that mentor imports and instantiates with the
kwargs. ``resolve_entry_point`` imports every ``module:name`` a user gives, env classes and the
experts of ``mentor record`` alike: from ``sys.path``, then from the working folder.

Some envs need a package that may not be installed (Box2D, ale-py, MuJoCo, jax). ``PACKAGES``
says what installs each (a mentor extra where one does), and an env that cannot be made for
want of one raises ``MissingPackageError`` naming it, with Gymnasium's own hint. ``unavailable``
tells, without making the env, whether a registered id can be made here: ``mentor envs`` hides
those that cannot, and an unknown id is not offered them as close matches.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec
from gymnasium.error import DependencyNotInstalled

from mentor.errors import MentorError, MissingPackageError, UnknownEnvError

# The optional packages envs import, by import name: the requirement pip installs for it, and the
# mentor extra that installs it (None: no extra does). Every message about a missing package, and
# `mentor envs`, reads this one map.
PACKAGES: dict[str, tuple[str, str | None]] = {
    "Box2D": ("box2d", "envs"),
    "ale_py": ("ale-py", "envs"),
    "pygame": ("pygame-ce", "envs"),  # the data extra installs it too (mentor record --human)
    "pettingzoo": ("pettingzoo", "multiagent"),
    "mpe2": ("mpe2", "multiagent"),
    "minigrid": ("minigrid", "envs"),
    "minatar": ("minatar", "envs"),
    "optuna": ("optuna", "tune"),
    "mujoco": ("mujoco", None),
    "jax": ("jax", None),
    "flax": ("flax", None),
}

# What Gymnasium's own env families import, by module (the longest prefix applies): their modules
# raise at import when a package is missing, and `mentor envs` tells without importing them. A
# module not listed needs its own top-level package.
FAMILY_NEEDS: dict[str, tuple[str, ...]] = {
    "gymnasium.envs.box2d": ("Box2D",),
    "gymnasium.envs.box2d.car_racing": ("Box2D", "pygame"),
    "gymnasium.envs.mujoco": ("mujoco",),
    "gymnasium.envs.phys2d": ("jax", "flax"),
    "gymnasium.envs.tabular": ("jax", "flax"),
    "gymnasium.envs.tabular.cliffwalking": ("jax",),
}

# Namespaces whose ids a package registers when it is imported (Gymnasium 1.x imports no plugins
# itself): for an id of the namespace, mentor imports the package when it is installed.
NAMESPACE_PACKAGES: dict[str, str] = {
    "ALE": "ale_py",
    "MinAtar": "minatar",
    "mentor": "mentor.envs.variants",
}
# Packages that register their ids when a function of theirs is called, not on import.
REGISTRARS: dict[str, str] = {"minatar": "minatar.gym:register_envs"}
# Packages whose ids have no namespace but a prefix, registered when the package is imported.
PREFIX_PACKAGES: dict[str, str] = {"MiniGrid-": "minigrid", "BabyAI-": "minigrid"}


# --- optional packages ---------------------------------------------------------------------------


def installed(package: str) -> bool:
    """Whether an import name can be imported here, found without importing it."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def install_hint(packages: list[str] | tuple[str, ...]) -> str:
    """How to install these import names: the mentor extras that do, else pip's requirements."""
    extras = sorted({PACKAGES[p][1] for p in packages if p in PACKAGES and PACKAGES[p][1]})
    pips = [PACKAGES[p][0] for p in packages if p in PACKAGES and not PACKAGES[p][1]]
    unknown = [p for p in packages if p not in PACKAGES]
    hints = [f"pip install 'mentor[{','.join(extras)}]'"] if extras else []
    if pips:
        hints.append(f"pip install {' '.join(pips)}")
    if unknown:
        hints.append(
            f"install what provides {', '.join(unknown)} (often: pip install {unknown[0]})"
        )
    return " and ".join(hints)


def _needs_phrase(packages: list[str]) -> str:
    """'needs the package box2d, which is not installed here: pip install ...'."""
    names = [PACKAGES[p][0] if p in PACKAGES else p for p in packages]
    if len(names) == 1:
        what = f"the package {names[0]}, which is"
    else:
        what = f"the packages {', '.join(names)}, which are"
    return f"needs {what} not installed here: {install_hint(packages)}"


def _top(module: str | None) -> str | None:
    return module.partition(".")[0] if module else None


def _missing_module(exc: BaseException) -> str | None:
    """The top-level module whose absence raised ``exc`` (or caused it), if it says."""
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return _top(exc.name)
        exc = exc.__cause__ or exc.__context__
    return None


def _needs(module: str) -> tuple[str, ...]:
    """The packages a module of an entry point needs (``FAMILY_NEEDS``, else its own top level)."""
    best = max(
        (k for k in FAMILY_NEEDS if module == k or module.startswith(k + ".")),
        key=len,
        default=None,
    )
    return FAMILY_NEEDS[best] if best else (module.partition(".")[0],)


def missing_package(
    label: str, exc: BaseException, module: str | None = None, context: str | None = None
) -> MissingPackageError:
    """The error for an import that failed for want of a package: which one, what installs it,
    and the original message (Gymnasium's hint). ``module`` is the entry point's module, to name
    the package from ``FAMILY_NEEDS`` when the exception does not; ``context`` says what raised
    ("importing module 'my_envs' raised")."""
    package = _missing_module(exc)
    if package is None and module is not None:
        package = next((p for p in _needs(module) if not installed(p)), None)
    if isinstance(exc, DependencyNotInstalled):
        said = f"Gymnasium: {exc}"
    else:
        said = f"{context + ' ' if context else ''}{_describe(exc)}"
    if package is None:
        return MissingPackageError(
            f"{label} cannot be made with the packages installed here ({said})"
        )
    packages = [package]
    if module is not None and package in _needs(module):  # name all it needs that are missing
        packages = [p for p in _needs(module) if not installed(p)] or packages
    return MissingPackageError(f"{label} {_needs_phrase(packages)} ({said})")


@contextmanager
def _translating_missing_packages(label: str, module: str | None = None) -> Iterator[None]:
    """Turn the errors of a missing package, raised while making an env, into MissingPackageError.

    A ``ModuleNotFoundError`` for a submodule of an installed package is a bug, and goes through.
    """
    try:
        yield
    except DependencyNotInstalled as exc:
        raise missing_package(label, exc, module) from None
    except ModuleNotFoundError as exc:
        if _top(exc.name) and not installed(_top(exc.name)):
            raise missing_package(label, exc, module) from None
        raise


# --- module:name entry points --------------------------------------------------------------------


def _is_part_of(missing: str | None, module_name: str) -> bool:
    """Whether the module not found is ``module_name`` itself or one of its parent packages."""
    return bool(missing) and (module_name == missing or module_name.startswith(f"{missing}."))


def _cwd_on_path(cwd: str) -> bool:
    return any(os.path.realpath(entry or os.curdir) == os.path.realpath(cwd) for entry in sys.path)


def _import(module_name: str) -> Any:
    """Import a module, also from the working folder (as ``python -m`` would; the ``mentor``
    command does not put it on the path). The folder is then appended to ``sys.path``, after
    everything installed, so that it adds modules without shadowing any."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if not _is_part_of(exc.name, module_name) or _cwd_on_path(cwd):
            raise
        sys.path.append(cwd)
        importlib.invalidate_caches()
        return importlib.import_module(module_name)


def import_module(module_name: str, label: str, error: type[MentorError] = UnknownEnvError) -> Any:
    """Import the module of an entry point (see ``_import``); ``label`` names the entry point in
    messages. A module that is not found raises ``error``, hinting at PYTHONPATH; one whose own
    import needs a package that is not installed raises ``MissingPackageError``."""
    importing = f"importing module '{module_name}' raised"
    try:
        return _import(module_name)
    except DependencyNotInstalled as exc:
        raise missing_package(label, exc, context=importing) from None
    except ModuleNotFoundError as exc:
        missing, itself = _top(exc.name), _is_part_of(exc.name, module_name)
        if missing and not installed(missing) and (missing in PACKAGES or not itself):
            raise missing_package(label, exc, context=importing) from None
        if itself:
            raise error(
                f"{label}: cannot import module '{module_name}' (no module named '{exc.name}' on "
                f"sys.path or in the working folder {os.getcwd()}): run mentor from the folder "
                "that holds it, or add that folder to PYTHONPATH "
                "(PYTHONPATH=/path/to/folder mentor ...)"
            ) from None
        raise error(f"{label}: {importing} {_describe(exc)}") from None
    except ImportError as exc:
        raise error(f"{label}: {importing} {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def resolve_entry_point(
    target: str, what: str = "env", error: type[MentorError] = UnknownEnvError
) -> Any:
    """The object named by ``package.module:name``: an env class, an expert function.

    ``what`` names it in messages ("env 'my_envs:Maze'", "expert 'my_experts:greedy'"), and
    ``error`` is raised when it does not resolve: a malformed target, a module not found (with a
    hint at PYTHONPATH and the working folder) or a missing attribute (with close matches). A
    module that imports a package that is not installed raises ``MissingPackageError`` instead.
    """
    label = f"{what} '{target}'"
    module_name, colon, name = target.partition(":")
    if not colon or not module_name or not name:
        raise error(f"{label} is not of the form 'package.module:name'")
    module = import_module(module_name, label, error)
    found = getattr(module, name, None)
    if found is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise error(
            f"{label}: module '{module_name}' has no attribute '{name}'" + _close(name, names)
        )
    return found


def _close(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


# --- env ids -------------------------------------------------------------------------------------


def is_entry_point(env_id: str) -> bool:
    """True for ``package.module:ClassName`` ids that are not registered with Gymnasium."""
    return ":" in env_id and env_id not in gym.registry and not _registered_with_module(env_id)


def _registered_with_module(env_id: str) -> bool:
    # Gymnasium's own "module:EnvId" form imports a module that registers EnvId.
    module, _, name = env_id.partition(":")
    try:
        import_module(module, f"env '{env_id}'")
    except MentorError:
        return False  # resolving it as an entry point then says why
    return name in gym.registry


def env_class(env_id: str) -> type:
    """Import the class named by a ``package.module:ClassName`` entry point."""
    cls = resolve_entry_point(env_id, "env")
    if not callable(cls):
        raise UnknownEnvError(
            f"env '{env_id}' is a {type(cls).__name__}, not a gymnasium.Env class"
        )
    return cls


def _namespace(env_id: str) -> str | None:
    return env_id.partition("/")[0] if "/" in env_id else None


def register_namespaces(namespaces: list[str] | None = None) -> None:
    """Import the installed packages of ``NAMESPACE_PACKAGES`` (all, or these namespaces')
    whose ids are not registered yet, so that their ids are."""
    registered = {s.namespace for s in gym.registry.values()}
    if namespaces is None:  # every id is wanted: those of the prefixed packages too
        for package in set(PREFIX_PACKAGES.values()):
            if installed(package):
                importlib.import_module(package)
    for namespace, package in NAMESPACE_PACKAGES.items():
        wanted = namespaces is None or namespace in namespaces
        if wanted and namespace not in registered and installed(package):
            importlib.import_module(package)
            if package in REGISTRARS:
                module, _, function = REGISTRARS[package].partition(":")
                getattr(importlib.import_module(module), function)()


def missing_namespaces() -> dict[str, str]:
    """The namespaces of ``NAMESPACE_PACKAGES`` whose package is not installed, with what would
    install it: their ids cannot even be listed."""
    return {
        namespace: _needs_phrase([package])
        for namespace, package in NAMESPACE_PACKAGES.items()
        if not installed(package)
    }


def unavailable(env_spec: EnvSpec) -> str | None:
    """Why a registered env cannot be made here ("needs the package box2d, ..."), found without
    making it; None when nothing it needs is missing.

    It looks at what the entry point's module needs (``FAMILY_NEEDS``), not at the module itself,
    so it is fast: ``mentor envs`` asks it of every id. Gymnasium's placeholder entry points
    (ids that moved to other projects) raise their message at once, without making anything.
    """
    entry_point = env_spec.entry_point
    if callable(entry_point):
        placeholder = getattr(entry_point, "__module__", "").startswith("gymnasium") and getattr(
            entry_point, "__name__", ""
        ).startswith("_raise_")
        if placeholder:
            try:
                entry_point()
            except ImportError as exc:
                return f"cannot be made with the packages installed here: {exc}"
        return None
    if entry_point is None:
        return None
    missing = [p for p in _needs(entry_point.partition(":")[0]) if not installed(p)]
    return _needs_phrase(missing) if missing else None


def registered_envs() -> dict[str, str | None]:
    """Every registered id, with why it cannot be made here (``unavailable``) or None; the
    installed packages of ``NAMESPACE_PACKAGES`` are imported first, so their ids are listed."""
    register_namespaces()
    return {env_id: unavailable(env_spec) for env_id, env_spec in gym.registry.items()}


def _unknown(env_id: str) -> MentorError:
    """The error for an id that is not registered: a missing package when its namespace's is,
    else the closest ids that can be made here (or those that could, with what they need)."""
    namespace = _namespace(env_id)
    gymnasium_says = ""
    try:
        gym.spec(env_id)
    except gym.error.NamespaceNotFound as exc:
        gymnasium_says = f"Gymnasium: {exc}"
    except gym.error.Error:
        pass
    package = NAMESPACE_PACKAGES.get(namespace or "")
    if package is not None and not installed(package):
        return MissingPackageError(
            f"env '{env_id}' {_needs_phrase([package])} (its {namespace}/... ids are registered "
            f"by {package}; {gymnasium_says or 'Gymnasium does not know them'})"
        )
    reasons = {i: unavailable(s) for i, s in gym.registry.items()}
    makeable = [i for i, r in reasons.items() if not r]
    # Ids of the query's own namespace first (CartPol-v1: CartPole-v1, not mentor/CartPole-v1).
    own = [i for i in makeable if _namespace(i) == namespace]
    close = difflib.get_close_matches(env_id, own, n=5) or difflib.get_close_matches(
        env_id, makeable, n=5
    )
    if close:
        suggestion = f" (did you mean: {', '.join(close)}?)"
    else:
        missing = [i for i, r in reasons.items() if r]
        own = [i for i in missing if _namespace(i) == namespace]
        close = difflib.get_close_matches(env_id, own, n=3) or difflib.get_close_matches(
            env_id, missing, n=3
        )
        why = str(reasons[close[0]]) if close else ""
        they = "it " + why if len(close) == 1 else "they " + why.replace("needs", "need", 1)
        suggestion = f" (did you mean: {', '.join(close)}? {they})" if close else ""
    return UnknownEnvError(
        f"unknown env id '{env_id}'"
        + (f" ({gymnasium_says})" if gymnasium_says else "")
        + suggestion
        + "; give a registered Gymnasium id ('mentor envs' lists them) or an entry point "
        "'package.module:ClassName'"
    )


def spec(env_id: str) -> EnvSpec | None:
    """The Gymnasium spec of a registered id, None for an entry point; raise for an unknown id,
    and ``MissingPackageError`` for an id that needs a package not installed here."""
    if is_entry_point(env_id):
        env_class(env_id)  # fail early with a clear message if it does not import
        return None
    name = env_id.partition(":")[2] if ":" in env_id else env_id
    if name not in gym.registry and _namespace(name) in NAMESPACE_PACKAGES:
        register_namespaces([_namespace(name)])  # type: ignore[list-item]
    prefixed = next((p for prefix, p in PREFIX_PACKAGES.items() if name.startswith(prefix)), None)
    if name not in gym.registry and prefixed is not None:
        if not installed(prefixed):
            raise MissingPackageError(f"env '{env_id}' {_needs_phrase([prefixed])}")
        importlib.import_module(prefixed)
    if name not in gym.registry:
        raise _unknown(name)
    env_spec = gym.spec(name)
    if unavailable(env_spec) is not None:
        error = _cannot_make(env_id, env_spec)
        if error is not None:
            raise error
    return env_spec


def _cannot_make(env_id: str, env_spec: EnvSpec) -> MissingPackageError | None:
    """The error for a registered env that ``unavailable`` says cannot be made, with Gymnasium's
    own message: importing the entry point's module raises it (and fails fast, at the missing
    import). None when the module imports after all: the env is then made as usual."""
    label, reason = f"env '{env_id}'", unavailable(env_spec)
    if not isinstance(env_spec.entry_point, str):
        return MissingPackageError(f"{label} {reason}")
    module = env_spec.entry_point.partition(":")[0]
    importing = f"importing module '{module}' raised"
    try:
        importlib.import_module(module)
    except DependencyNotInstalled as exc:
        return missing_package(label, exc, module, importing)
    except ImportError as exc:
        return missing_package(label, exc, module, importing)
    return None


def make_env(env_id: str, kwargs: dict[str, Any] | None = None, **extra: Any) -> gym.Env:
    """Make one environment from an id or entry point (``extra`` is e.g. ``render_mode``)."""
    kwargs = {**(kwargs or {}), **extra}
    env_spec = spec(env_id)
    label = f"env '{env_id}'"
    if env_spec is None:
        with _translating_missing_packages(label):
            env = env_class(env_id)(**kwargs)
        if not isinstance(env, gym.Env):
            raise UnknownEnvError(f"env '{env_id}' is a {type(env).__name__}, not a gymnasium.Env")
        return at_the_edge(env)
    module = (
        env_spec.entry_point.partition(":")[0] if isinstance(env_spec.entry_point, str) else None
    )
    with _translating_missing_packages(label, module):
        env = gym.make(env_spec, **kwargs)
    return at_the_edge(env)


def at_the_edge(env: gym.Env) -> gym.Env:
    """What some env families need before mentor's encoders see them: MiniGrid's observation
    (``mentor.envs.minigrid``)."""
    if type(env.unwrapped).__module__.startswith("minigrid."):
        from mentor.envs.minigrid import MiniGridObservation

        return MiniGridObservation(env)
    return env
