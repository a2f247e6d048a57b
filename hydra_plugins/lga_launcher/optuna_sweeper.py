"""Hydra's Optuna sweeper, made resumable: ``n_trials`` is the search's total, not a per-call count.

With ``storage`` set (conf/hparams_search/optuna.yaml: SQLite in the sweep directory), the
same command run again continues the study it finds there. Finished trials (complete,
failed or pruned) count towards ``n_trials``; those a killed run left ``RUNNING`` do not
(the sampler ignores them, and their places are run again). The sampler is reseeded from
its seed and the number of trials so far, so a resumed search does not repeat the random
start-up trials it already ran; an uninterrupted search is fixed by its seed.
"""

from __future__ import annotations

import logging
from typing import Any, List

import numpy as np
import optuna
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import OmegaConf
from optuna.trial import TrialState

log = logging.getLogger(__name__)

DONE = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
_ABSENT = object()


def _reseed(sampler: Any, offset: int) -> None:
    """Shift a seeded sampler's random streams by ``offset`` (optuna 2's TPE/random samplers keep them in ``_rng``)."""
    for owner in (sampler, getattr(sampler, "_random_sampler", None)):
        rng = getattr(owner, "_rng", None)
        if isinstance(rng, np.random.RandomState):
            owner._rng = np.random.RandomState((int(rng.randint(2**31 - 1)) + offset) % (2**31 - 1))


class ResumableOptunaSweeper(OptunaSweeper):
    def sweep(self, arguments: List[str]) -> None:
        impl = self.sweeper
        # one search space for every task: an option this config lacks (label smoothing under
        # task=detection) is left out of the search, and the log says so
        absent = [key for key in impl.params or {} if OmegaConf.select(impl.config, key, default=_ABSENT) is _ABSENT]
        for key in absent:
            log.info("not searched: %s (this config has no such option)", key)
            del impl.params[key]
        if impl.storage is not None:
            try:
                study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
            except KeyError:  # no such study yet: a fresh search
                study = None
            if study is not None:
                trials = study.get_trials(deepcopy=False)
                done = sum(t.state in DONE for t in trials)
                log.info("resuming study %s: %d of %d trials done", impl.study_name, done, impl.n_trials)
                impl.n_trials = max(0, impl.n_trials - done)
                _reseed(impl.sampler, len(trials))
        return impl.sweep(arguments)
