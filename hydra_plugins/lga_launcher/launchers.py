"""lga's submitit launchers, where Hydra looks for plugins (see :mod:`lga.launchers`)."""

from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from lga.launchers import WaitForAllJobs


class SlurmLauncher(WaitForAllJobs, submitit_launcher.SlurmLauncher):
    pass


class LocalLauncher(WaitForAllJobs, submitit_launcher.LocalLauncher):
    pass
