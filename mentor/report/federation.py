"""The report's federated section: a FedAvg run's per-client matrix (``federation.json``,
written by ``mentor/methods/fedavg.py``): the mean return of the server's model, and of each
client's last local model when the server saw them, on each client's variant of the env. Shown
as a table and a heatmap (models down, variants across).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FEDERATION_FILE = "federation.json"


def read(run: Path) -> dict[str, Any] | None:
    """The run's matrix, or None for a run that has none (or an unreadable file)."""
    try:
        data = json.loads((run / FEDERATION_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("returns"), dict) else None


def variant(client: dict[str, Any]) -> str:
    """``length=0.25``, ``env=Acrobot-v1``: what sets a client's env apart."""
    parts = [f"{k}={v:g}" for k, v in (client.get("params") or {}).items()]
    parts += [f"{k}={v}" for k, v in (client.get("kwargs") or {}).items()]
    if client.get("env"):
        parts.insert(0, f"env={client['env']}")
    return ", ".join(parts) or "the run's env"


def rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    clients = data["clients"]
    out = [(f"Client {k}", variant(c)) for k, c in enumerate(clients)]
    out.append(("Rounds, env steps", f"{data['rounds']:,}, {data['steps']:,}"))
    aggregation = "secure (pairwise masks)" if data.get("secure_aggregation") else "weighted mean"
    dp = data.get("dp")
    if dp:
        epsilon = "∞ (no noise)" if dp["epsilon"] is None else f"{dp['epsilon']:.3g}"
        aggregation += (f"; DP: clip {dp['clip']:g}, noise x{dp['noise_multiplier']:g}, "
                        f"epsilon {epsilon} at delta {dp['delta']:g}")  # fmt: skip
    out.append(("Aggregation", aggregation))
    for model, returns in data["returns"].items():
        cells = ", ".join(f"{r:.1f}" for r in returns)
        out.append((f"{model} on clients 0-{len(returns) - 1}",
                    f"{cells} (mean {np.mean(returns):.1f})"))  # fmt: skip
    return out


def plot(data: dict[str, Any], path: Path) -> Path:
    models = list(data["returns"])
    values = np.array([data["returns"][m] for m in models], dtype=float)
    figure = Figure(figsize=(1.6 + 1.3 * values.shape[1], 0.9 + 0.45 * len(models)))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                color="white" if value < values.mean() else "black")  # fmt: skip
    ax.set_xticks(range(values.shape[1]),
                  [f"client {k}\n{variant(c)}" for k, c in enumerate(data["clients"])],
                  fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_title(f"mean return of {data['episodes']} episodes: model (rows) on variant (columns)",
                 fontsize=9)  # fmt: skip
    figure.colorbar(image, ax=ax)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
