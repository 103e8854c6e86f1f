"""The --engine options that annotate and evaluate share, and their checks."""
from dataclasses import dataclass
from typing import Optional

import typer

from ..annotate.engines import LOCAL, RAY, check_engine
from ..errors import Errors

ENGINE = typer.Option(
    LOCAL,
    "--engine",
    "-e",
    help="Where the pipeline runs: local (nlp.pipe here) or ray (an actor pool on Ray)",
)
N_PROCESS = typer.Option(None, "--n-process", "-n", help="Local: Processes for nlp.pipe (default 1)")
ADDRESS = typer.Option(
    None,
    "--address",
    help="Ray: Cluster: auto, HOST:PORT or ray://HOST:PORT (default: start a local Ray on 127.0.0.1)",
)
ACTORS = typer.Option(
    None, "--actors", help="Ray: Actors, each loading the pipeline once (default: as resources allow)"
)
NUM_CPUS = typer.Option(None, "--num-cpus", help="Ray: CPUs per actor (default 1)")
NUM_GPUS = typer.Option(None, "--num-gpus", help="Ray: GPUs per actor (default 0)")
BLOCK_BATCHES = typer.Option(
    None, "--block-batches", help="Ray: Batches per block, the unit of reading, retrying and output shards (default 16)"
)
MAX_RESTARTS = typer.Option(None, "--max-restarts", help="Ray: Restarts of a killed actor, -1: no limit (default 3)")
MAX_TASK_RETRIES = typer.Option(
    None, "--max-task-retries", help="Ray: Retries of a batch whose actor died, -1: no limit (default 3)"
)


@dataclass
class EngineOptions:
    """The engine options as given on the command line (None: not given)."""

    engine: str
    n_process: Optional[int] = None
    address: Optional[str] = None
    actors: Optional[int] = None
    num_cpus: Optional[float] = None
    num_gpus: Optional[float] = None
    block_batches: Optional[int] = None
    max_restarts: Optional[int] = None
    max_task_retries: Optional[int] = None
    parquet: bool = False

    def check(self) -> None:
        """Raise E092 for an unknown engine, E093 for another engine's option."""
        check_engine(self.engine)
        if self.engine == RAY and self.n_process is not None:
            raise ValueError(Errors.E093.format(option="--n-process", engine=LOCAL))
        if self.engine == LOCAL:
            ray_only = {
                "--address": self.address,
                "--actors": self.actors,
                "--num-cpus": self.num_cpus,
                "--num-gpus": self.num_gpus,
                "--block-batches": self.block_batches,
                "--max-restarts": self.max_restarts,
                "--max-task-retries": self.max_task_retries,
                "--parquet": self.parquet or None,
            }
            for option, value in ray_only.items():
                if value is not None:
                    raise ValueError(Errors.E093.format(option=option, engine=RAY))

    def ray_settings(self, batch_size: int, progress: bool = True):  # -> RaySettings
        """The Ray settings, defaults where an option was not given."""
        from ..annotate.engines.ray_engine import RaySettings

        settings = RaySettings(address=self.address, actors=self.actors, batch_size=batch_size, progress=progress)
        for name in ("num_cpus", "num_gpus", "block_batches", "max_restarts", "max_task_retries"):
            value = getattr(self, name)
            if value is not None:
                setattr(settings, name, value)
        settings.check()
        return settings
