"""The report's options section: which option an option-critic agent had in force in each state,
on the grid (``options.json``, written by ``mentor/methods/option_critic.py``).

Two panels over the four-rooms grid (``mentor/envs/rooms.py``): the option in force most often
in each cell over training (its share of the cell's visits as the colour's strength), and the
option Q_Omega chooses greedily there at the end, with the mean termination probability of the
options in each cell written in it. Another env whose states are one-hot has the same data as
bars over its state indices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mentor.envs.rooms import FREE_CELLS, LAYOUT

OPTIONS_FILE = "options.json"


def read(run: Path) -> dict[str, Any] | None:
    """The run's option usage, or None for a run that has none."""
    path = run / OPTIONS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def on_grid(data: dict[str, Any]) -> bool:
    return data.get("states") == len(FREE_CELLS) and "FourRooms" in str(data.get("env_id"))


def rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    steps = np.asarray(data["option_steps"], dtype=float)
    total = max(steps.sum(), 1.0)
    out = [(f"option {i}", f"{s / total:.1%} of the steps") for i, s in enumerate(steps)]
    if data.get("termination"):
        beta = np.asarray(data["termination"], dtype=float)
        shown = ", ".join(f"{b:.2f}" for b in beta.mean(1))
        out.append(("Mean termination probability per option", shown))
    return out


def plot(data: dict[str, Any], path: Path) -> None:
    """The usage figure (module docstring) into ``path``."""
    counts = np.asarray(data.get("counts") or [], dtype=float)
    options = int(data["num_options"])
    colours = colormaps["tab10"]
    figure = Figure(figsize=(9.0, 4.4))
    FigureCanvasAgg(figure)
    if counts.size and on_grid(data):
        visits = counts.sum(0)
        used = counts.argmax(0)
        share = np.where(visits > 0, counts.max(0) / np.maximum(visits, 1), 0.0)
        greedy = np.asarray(data["greedy_option"])
        beta = np.asarray(data["termination"], dtype=float).mean(0)
        panels = (("Option in force most often (strength: its share)", used, share, None),
                  ("Greedy option at the end (number: mean termination)", greedy,
                   np.ones(len(greedy)), beta))  # fmt: skip
        for index, (title, option, strength, numbers) in enumerate(panels):
            ax = figure.add_subplot(1, 2, index + 1)
            image = np.ones((len(LAYOUT), len(LAYOUT[0]), 3)) * 0.15  # walls dark
            for state, (r, c) in enumerate(FREE_CELLS):
                colour = np.asarray(colours(int(option[state]) % 10)[:3])
                weight = 0.25 + 0.75 * float(strength[state])
                image[r, c] = weight * colour + (1 - weight) * np.ones(3)
                if numbers is not None:
                    ax.text(c, r, f"{numbers[state]:.1f}", ha="center", va="center", fontsize=5)
            ax.imshow(image, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        handles = [Patch(color=colours(i % 10), label=f"option {i}") for i in range(options)]
        figure.legend(handles=handles, loc="lower center", ncol=options, fontsize=8)
    else:
        ax = figure.add_subplot()
        steps = np.asarray(data["option_steps"], dtype=float)
        ax.bar(range(options), steps / max(steps.sum(), 1.0),
               color=[colours(i % 10) for i in range(options)])  # fmt: skip
        ax.set_xlabel("option")
        ax.set_ylabel("share of the steps")
        ax.set_title("Option usage", fontsize=9)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    figure.savefig(path, dpi=110)
