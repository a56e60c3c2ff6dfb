"""``mentor league`` and the report's league section: a self-play run's ratings, as a table and
a plot, from its ``league.json`` (written by the training session: ``runs/session.py``).

The plot has two panels: the learner's ratings over training (OpenSkill's ordinal, mu - 3
sigma, and Elo on a second axis), with each snapshot's entry into the pool marked; and every
rated player's ordinal at the end, in order of entry, baselines first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mentor.errors import CheckpointError, ConfigError

LEAGUE_FILE = "league.json"
COLOURS = {"learner": "tab:red", "snapshot": "tab:blue", "baseline": "tab:green",
           "main exploiter": "tab:purple", "league exploiter": "tab:orange"}  # fmt: skip


def read_league(run: str | Path) -> dict[str, Any]:
    """The league of a self-play run folder; ``ConfigError`` when it has none, or fewer than
    two rated players (one player has no rating against anyone)."""
    path = Path(run) / LEAGUE_FILE
    if not Path(run).is_dir():
        raise ConfigError(f"'{run}' is not a run folder")
    if not path.is_file():
        raise ConfigError(
            f"'{run}' has no {LEAGUE_FILE}: it is not a self-play run (an experiment with a "
            "selfplay section), or it stopped before its first checkpoint"
        )
    try:
        league = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"'{path}' is not valid JSON ({exc})") from None
    rated = [row for row in league["ratings"] if row["games"] > 0]
    if len(rated) < 2:
        raise ConfigError(
            f"'{run}': a league needs at least two players with games to rate them; "
            f"{len(rated)} played ({', '.join(r['name'] for r in rated) or 'none'})"
        )
    return league


def roles(league: dict[str, Any]) -> dict[str, str]:
    """Every player's role: learner (a league's main agent), snapshot (the learner's past
    self), baseline, and with a league its exploiters and their snapshots."""
    out = {"learner": "learner"}
    for member in league["members"]:
        out[member["name"]] = "snapshot" if member["snapshot"] else "baseline"
    if "league" in league:
        out.update({name: role for name, role in league["league"]["roles"].items()
                    if role != "main agent"})  # fmt: skip
    return out


def rows(league: dict[str, Any]) -> list[list[str]]:
    """The ratings table, best first: name, role, ordinal, mu, sigma, Elo, games, W/D/L."""
    out = []
    role = roles(league)
    for row in league["ratings"]:
        if row["games"] == 0:
            continue
        out.append([
            row["name"], role.get(row["name"], "snapshot"), f"{row['ordinal']:.2f}",
            f"{row['mu']:.2f}", f"{row['sigma']:.2f}",
            f"{row['elo']:.0f}", f"{row['games']:,}",
            f"{row['wins']}/{row['draws']}/{row['losses']}",
        ])  # fmt: skip
    return out


def plot_league(league: dict[str, Any], path: Path) -> Path:
    figure = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(figure)
    over, now = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    history = league["history"]
    steps = [h["step"] for h in history]
    over.plot(steps, [h["mu"] - 3 * h["sigma"] for h in history], color="tab:blue",
              label="ordinal (mu - 3 sigma)")  # fmt: skip
    over.set_xlabel("env steps")
    over.set_ylabel("OpenSkill ordinal", color="tab:blue")
    elo = over.twinx()
    elo.plot(steps, [h["elo"] for h in history], color="tab:orange", label="Elo")
    elo.set_ylabel("Elo", color="tab:orange")
    for event in league["events"]:
        if "joined" in event and event["step"] > 0:
            over.axvline(event["step"], color="grey", alpha=0.15, lw=0.8)
    over.set_title("the learner's ratings (grey: a snapshot joins the pool)")
    ratings = {row["name"]: row for row in league["ratings"] if row["games"] > 0}
    order = [m["name"] for m in league["members"] if not m["snapshot"]]
    order += [e["joined"] for e in league["events"] if "joined" in e]
    live = [e["name"] for e in league.get("league", {}).get("exploiters", [])]
    order = [name for name in dict.fromkeys(order) if name in ratings] + [*live, "learner"]
    values = [ratings[name]["ordinal"] for name in order if name in ratings]
    names = [name for name in order if name in ratings]
    role = roles(league)
    colours = [COLOURS.get(role.get(name, "snapshot"), "tab:blue") for name in names]
    now.barh(range(len(names)), values, color=colours)
    now.set_yticks(range(len(names)), [_short(name) for name in names], fontsize=7)
    now.invert_yaxis()
    now.set_xlabel("OpenSkill ordinal at the end")
    shown = [r for r in COLOURS if r in {role.get(name, "snapshot") for name in names}]
    now.legend(handles=[Patch(color=COLOURS[r], label=r) for r in shown], fontsize=7,
               loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    now.set_title("every player at the end")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _short(name: str) -> str:
    return name if len(name) <= 24 else "…" + name[-23:]
