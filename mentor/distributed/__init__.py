"""Training on Ray (``pip install 'mentor[ray]'``): rollout workers that collect experience with
the current policy (``rollouts.py``), a local Ray started by the run or a cluster joined by
address (``distributed.workers``, ``distributed.address``; ``mentor train --workers N``).
"""
