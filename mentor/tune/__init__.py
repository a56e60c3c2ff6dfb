"""Step 9 of the workflow: hyperparameter and architecture search with Optuna (``mentor tune``).

``space.py`` is the ``tune:`` section of an experiment file (what is searched, how trials are
scored); ``study.py`` runs the study (trials of seeded runs, pruning, storage, the re-check on
fresh seeds); ``report.py`` shows a study (table, importances, plots).
"""
