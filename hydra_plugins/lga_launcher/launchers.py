"""lga's launchers, where Hydra looks for plugins (see :mod:`lga.launchers`)."""

from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from lga.launchers import ParallelJobs, WaitForAllJobs


class ParallelLauncher(ParallelJobs, JoblibLauncher):
    pass


class SlurmLauncher(WaitForAllJobs, submitit_launcher.SlurmLauncher):
    pass


class LocalLauncher(WaitForAllJobs, submitit_launcher.LocalLauncher):
    pass
