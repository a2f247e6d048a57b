"""Hydra's Optuna sweeper, made resumable and shareable: ``n_trials`` is the search's total, not a
per-call count, and any number of processes can run one search together.

With ``storage`` set (conf/hparams_search/optuna.yaml: SQLite in the sweep directory), the
same command run again continues the study it finds there. Finished trials (complete,
failed or pruned) count towards ``n_trials``; those a killed run left ``RUNNING`` do not
(the sampler ignores them, and their places are run again). The sampler is reseeded from
its seed and the number of trials so far, so a resumed search does not repeat the random
start-up trials it already ran; an uninterrupted search is fixed by its seed.

Two processes on one storage (two SLURM jobs, two shells) share its trials: each trial is claimed
under a lock beside the SQLite file (in the sweep directory for another storage): count the trials
finished or running, ask Optuna for the next one if fewer than ``n_trials``, hold the new trial's own
lock while it trains. A RUNNING trial whose lock nobody holds was left by a killed run. Each process
ends once the search has its ``n_trials``, after the trials the others run have finished, and writes
``optimization_results.yaml`` from all of them.

Before any trial runs: ``n_trials`` must be at least 1, and every searched key an option of the config
(a key only another task's model has, such as ``model.label_smoothing`` under ``task=detection``, is
left out of the search with a warning; any other is an error that lists the valid keys).
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from pathlib import Path
from typing import Any, List

import numpy as np
import optuna
from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from lga.claims import FileLock
from lga.utils import write_atomic

log = logging.getLogger(__name__)

DONE = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
_ABSENT = object()


def _reseed(sampler: Any, offset: int) -> None:
    """Shift a seeded sampler's random streams by ``offset`` (optuna 2's TPE/random samplers keep them in ``_rng``)."""
    for owner in (sampler, getattr(sampler, "_random_sampler", None)):
        rng = getattr(owner, "_rng", None)
        if isinstance(rng, np.random.RandomState):
            owner._rng = np.random.RandomState((int(rng.randint(2**31 - 1)) + offset) % (2**31 - 1))


def _leaves(node: Any, prefix: str) -> list[str]:
    """Every settable key under ``node`` (``_target_`` and the like left out), dotted from ``prefix``."""
    if not isinstance(node, DictConfig):
        return [prefix]
    keys = []
    for key in node.keys():
        if str(key).startswith("_"):
            continue
        value = node._get_node(key)
        keys += _leaves(value, f"{prefix}.{key}") if isinstance(value, DictConfig) else [f"{prefix}.{key}"]
    return keys


def _in_another_option(key: str) -> bool:
    """Whether another option of ``key``'s config group has it (``model.label_smoothing``: the classifier's)."""
    group, _, rest = key.partition(".")
    options = ConfigStore.instance().repo.get("schema", {}).get(group, {})
    return bool(rest) and any(
        OmegaConf.select(option.node, rest, default=_ABSENT) is not _ABSENT for option in options.values()
    )


def check_search_space(config: DictConfig, params: dict[str, Any]) -> list[str]:
    """The searched keys to leave out (this config lacks them, another option of their group has them:
    label smoothing, a classifier's, under task=detection); an error for a key no option has."""
    absent = [key for key in params if OmegaConf.select(config, key, default=_ABSENT) is _ABSENT]
    typos = [key for key in absent if not _in_another_option(key)]
    if typos:
        group, _, rest = typos[0].partition(".")
        valid = _leaves(config[group], group) if group in config and isinstance(config[group], DictConfig) else []
        if valid:  # a misspelt option of a group: compare within the group
            close = [f"{group}.{k}" for k in difflib.get_close_matches(rest, [v[len(group) + 1 :] for v in valid])]
        else:  # a misspelt group
            everything = [leaf for top in config if top != "hydra" for leaf in _leaves(config._get_node(top), str(top))]
            close = difflib.get_close_matches(typos[0], everything, n=3, cutoff=0.8)
        search = config.hydra.runtime.choices.get("hparams_search")
        raise SystemExit(
            f"error: hydra.sweeper.params{f' (hparams_search={search})' if search else ''} searches "
            f"{', '.join(typos)}, which this config does not have"
            + (f" (did you mean {' or '.join(close)}?)" if close else "")
            + (f"; the {group} options are {', '.join(valid)}" if valid else f"; its groups are {', '.join(config)}")
        )
    return absent


class ResumableOptunaSweeper(OptunaSweeper):
    def sweep(self, arguments: List[str]) -> None:
        impl = self.sweeper
        if impl.n_trials < 1:
            raise SystemExit(
                f"error: hydra.sweeper.n_trials={impl.n_trials}: a search runs at least 1 trial "
                "(n_trials counts every trial of the search, those of earlier runs included)"
            )
        # one search space for every task: an option only another task's model has (label smoothing under
        # task=detection) is left out of the search, and the log says so; a key no config has is an error
        for key in check_search_space(impl.config, dict(impl.params or {})):
            log.warning("not searched: %s (this config has no such option): only another option of its group has", key)
            del impl.params[key]
        # what was searched, as Hydra's basic sweeper records it: tuned=<this directory> applies only these keys
        sweep_dir = Path(str(impl.config.hydra.sweep.dir))
        write_atomic(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(impl.config))
        if impl.storage is None:
            return impl.sweep(arguments)  # in memory: one process, Hydra's own loop
        return SharedSearch(impl, arguments).run()


def _sqlite_file(storage: Any) -> Path | None:
    match = re.match(r"sqlite:///(.+)", str(storage))
    return Path(match.group(1)) if match else None


class SharedSearch:
    """Hydra's Optuna loop with every trial claimed under a lock, so processes sharing a storage share
    its ``n_trials`` (see the module's docstring)."""

    def __init__(self, impl: Any, arguments: List[str]) -> None:
        self.impl = impl
        impl._process_searchspace_config()
        space, self.fixed = create_params_from_overrides(impl._parse_sweeper_params_config() + list(arguments))
        self.space = {**(impl.search_space_distributions or {}), **space}
        for name in self.fixed:
            self.space.pop(name, None)
        if isinstance(impl.sampler, functools.partial) and impl.sampler.func == optuna.samplers.GridSampler:
            grid = {name: impl._to_grid_sampler_choices(d) for name, d in self.space.items()}
            impl.sampler = impl.sampler(grid)
            impl.n_trials = min(impl.n_trials, int(np.prod([len(choices) for choices in grid.values()])))
        self.directions = impl._get_directions()
        database = _sqlite_file(impl.storage)
        lock_dir = database.parent if database is not None else Path(str(impl.config.hydra.sweep.dir))
        lock_dir.mkdir(parents=True, exist_ok=True)
        name = impl.study_name or "study"
        self.search_lock = FileLock(lock_dir / f".{name}.lock")
        self.trial_locks = lock_dir / f".{name}.trials"
        self.trial_locks.mkdir(exist_ok=True)
        self.search_lock.acquire()  # two processes creating one SQLite schema at once: one fails
        try:
            self.study = optuna.create_study(
                study_name=impl.study_name, storage=impl.storage, sampler=impl.sampler,
                directions=self.directions, load_if_exists=True,
            )  # fmt: skip
        finally:
            self.search_lock.release()
        self.expected_trials = 0  # the trials this process knows of; another count means another writer
        self.running_elsewhere = 0  # set by each _claim, under the search lock: what _claim_after_others waits on

    def _trial_lock(self, number: int) -> FileLock:
        return FileLock(self.trial_locks / f"{number}.lock")

    def _places_taken(self) -> tuple[list[Any], int, int]:
        """The study's trials, how many finished, and how many run in a live process (together, the places of
        ``n_trials`` taken). Called under the search lock, so no trial is asked meanwhile.

        The locks are read before the states: a process records its trial's end before it releases the
        trial's lock, so a trial still RUNNING after its lock was found free was left by a killed run. Read
        the other way round, a trial that ends between the two reads counts as neither (a fifth trial of 4)."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        orphans = {t.number for t in running if not self._trial_lock(t.number).held_elsewhere()}
        trials = self.study.get_trials(deepcopy=False)
        finished = sum(t.state in DONE for t in trials)
        alive = sum(t.state == TrialState.RUNNING and t.number not in orphans for t in trials)
        return trials, finished, alive

    def _claim(self, count: int) -> list[tuple[Any, FileLock]]:
        """Up to ``count`` new trials, each with its lock held, while the search has fewer than ``n_trials``.
        Sets ``running_elsewhere``: the trials other processes ran as it counted."""
        self.search_lock.acquire()
        try:
            trials, finished, self.running_elsewhere = self._places_taken()
            places = self.impl.n_trials - finished - self.running_elsewhere
            if len(trials) != self.expected_trials:  # resumed, or another process asked: a fresh random stream
                _reseed(self.impl.sampler, len(trials))
            claimed = []
            for _ in range(min(count, places)):
                trial = self.study.ask()
                lock = self._trial_lock(trial.number)
                lock.acquire()
                claimed.append((trial, lock))
            self.expected_trials = len(trials) + len(claimed)
            return claimed
        finally:
            self.search_lock.release()

    def run(self) -> None:
        impl = self.impl
        done = sum(t.state in DONE for t in self.study.get_trials(deepcopy=False))
        if done:
            log.info("resuming study %s: %d of %d trials done", impl.study_name, done, impl.n_trials)
        log.info("Study name: %s; storage: %s; sampler: %s", impl.study_name, impl.storage, type(impl.sampler).__name__)
        while claimed := self._claim(impl.n_jobs) or self._claim_after_others():
            trials = [trial for trial, _ in claimed]
            overrides = impl._configure_trials(trials, self.space, self.fixed)
            returns = impl.launcher.launch(overrides, initial_job_idx=trials[0].number)
            failures = [self._tell(trial, ret) for trial, ret in zip(trials, returns)]
            for _, lock in claimed:
                lock.release()
            failures = [f for f in failures if f is not None]
            if len(failures) / len(returns) > impl.max_failure_rate:
                log.error("%d of %d trials failed, above max_failure_rate=%s", len(failures), len(returns),
                          impl.max_failure_rate)  # fmt: skip
                for ret in returns:
                    ret.return_value  # JobReturn raises the job's own error
        self._write_results()

    def _claim_after_others(self) -> list[tuple[Any, FileLock]]:
        """Once the other processes' trials end: the places a killed one left (its RUNNING trial no longer
        counts), so the search still ends with its ``n_trials``. Empty only when a count under the search
        lock found every place finished: a trial another process claimed after the wait began (a killed
        run's place, taken again) is waited for too."""
        while True:
            self._wait_for_others()
            claimed = self._claim(self.impl.n_jobs)
            if claimed or not self.running_elsewhere:
                return claimed

    def _tell(self, trial: Any, ret: Any) -> Exception | None:
        """Record the trial's value in the study, or its failure (the job raised, or did not finish: None)."""
        try:
            value = ret.return_value
            if value is None:
                raise ValueError("the job did not finish; its result.json says why")
            values = [float(v) for v in value] if len(self.directions) > 1 else [float(value)]
        except Exception as err:
            self.study.tell(trial, state=TrialState.FAIL)
            log.warning("trial %d failed: %s", trial.number, err)
            return err
        self.study.tell(trial, values=values)
        return None

    def _wait_for_others(self) -> None:
        """The trials other processes are still running: the results must count them."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            lock = self._trial_lock(trial.number)
            if lock.held_elsewhere():
                log.info("waiting for trial %d, which another process runs (%s)", trial.number, lock.holder())
                lock.acquire()
                lock.release()

    def _write_results(self) -> None:
        path = Path(str(self.impl.config.hydra.sweep.dir)) / "optimization_results.yaml"
        if not any(t.state == TrialState.COMPLETE for t in self.study.get_trials(deepcopy=False)):
            log.error("no trial of study %s finished, so it has no best hyperparameters; see the summary",
                      self.impl.study_name)  # fmt: skip
            return
        if len(self.directions) < 2:
            best = self.study.best_trial
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            log.info("Best parameters: %s; best value: %s", best.params, best.value)
        else:
            results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values}
                                                       for t in self.study.best_trials]}  # fmt: skip
        write_atomic(path, OmegaConf.to_yaml(OmegaConf.create(results)))
