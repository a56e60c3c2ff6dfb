"""Optuna's database storage with one gap closed (FAULT-18): a process killed between creating a
trial and its first heartbeat leaves a RUNNING trial that never beat, which Optuna's stale-trial
check skips, so the trial stayed RUNNING forever and was never retried. Here such a trial is
stale once it started longer ago than the grace period, like one whose beats stopped.

Imported only when Optuna is installed (``mentor[tune]``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import optuna
from optuna.storages._rdb import models  # the heartbeat table Optuna's own check reads


class HeartbeatStorage(optuna.storages.RDBStorage):
    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        assert self.heartbeat_interval is not None
        grace = timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
        running = self.get_all_trials(
            study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
        )
        # Optuna stamps a trial's start with this machine's clock (datetime.now), so it is read
        # against the same clock; heartbeats use the database's, which the check above compares.
        started_before = datetime.now() - grace
        old = {
            t._trial_id for t in running if t.datetime_start and t.datetime_start < started_before
        }
        if not old:
            return stale
        session = self.scoped_session()
        try:
            beating = session.query(models.TrialHeartbeatModel.trial_id)
            beaten = {
                row.trial_id for row in beating.filter(models.TrialHeartbeatModel.trial_id.in_(old))
            }
        finally:
            self.scoped_session.remove()
        return stale + sorted(old - beaten)  # Optuna's stale ones all have a heartbeat row
