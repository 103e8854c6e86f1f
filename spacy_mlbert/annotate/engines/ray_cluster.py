"""Ray for one run: importing it, starting or joining a cluster (kept to
the loopback address on one machine), and the settings of the actor pool."""
import inspect
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple, Type

from ...errors import Errors
from ...evaluation.evaluate import DEFAULT_BATCH_SIZE, check_batch_size

logger = logging.getLogger("spacy_mlbert")


# Batches per block: a block is read, annotated and written as one shard.
DEFAULT_BLOCK_BATCHES = 16


DEFAULT_MAX_RESTARTS = 3


DEFAULT_MAX_TASK_RETRIES = 3


# Ray only keeps to the loopback address when it believes it runs on one
# machine (its macOS/Windows mode); see loopback_only.
_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


_WORKER_NICENESS_ENV = "RAY_worker_niceness"


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class RayNotInstalled(ImportError):
    """Ray Data is missing; the message (E091) says how to install it."""


def import_ray() -> Any:
    """Import Ray with Ray Data, or raise RayNotInstalled (E091).

    RETURNS (module): The ``ray`` module.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        # a missing module is the common case; anything else (a broken
        # install) is shown, as it needs another fix
        missing = isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] == "ray"
        detail = "" if missing else f" ({err})"
        raise RayNotInstalled(Errors.E091.format(detail=detail)) from None
    return ray


def _is_loopback(address: Optional[str]) -> bool:
    if address is None:
        return True
    host = address.rsplit(":", 1)[0] if ":" in address.strip("[]") or address.startswith("[") else address
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


@contextmanager
def loopback_only(ray: Any) -> Iterator[None]:
    """Keep a Ray on this machine to 127.0.0.1, and its workers at this
    process's priority.

    On Linux, Ray replaces 127.0.0.1 by the machine's network address, which
    makes a local Ray listen on every interface and a loopback address
    unreachable. In its single-machine mode (the default on macOS and
    Windows) it keeps to the loopback address. Ray also lowers its workers'
    priority (niceness +15) to keep its own processes responsive; here the
    workers do all the work, and on a busy machine they would starve. A
    RAY_worker_niceness set by the user is kept.
    """
    env = {_SINGLE_MACHINE_ENV: "0"}
    if _WORKER_NICENESS_ENV not in os.environ:
        env[_WORKER_NICENESS_ENV] = "0"
    saved_env = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # inherited by the processes Ray starts
    constants: Any = None
    saved = None
    try:
        # read when Ray is imported: set it for this process as well
        from ray._private import ray_constants as constants
    except ImportError:  # a Ray without it keeps to the environment variable
        constants = None
    if constants is not None:
        saved = getattr(constants, "ENABLE_RAY_CLUSTER", None)
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if constants is not None and saved is not None:
            constants.ENABLE_RAY_CLUSTER = saved
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def ray_session(address: Optional[str] = None) -> Iterator[Any]:
    """Connect to Ray for one run, and disconnect afterwards.

    A Ray already initialised in this process is used as it is (and left
    running). Otherwise ``address`` names a cluster ("auto", "HOST:PORT" or
    "ray://HOST:PORT"), or, when None, a local Ray is started on the fly on
    127.0.0.1 with no dashboard, and stopped at the end.

    address (Optional[str]): The cluster, or None for a local Ray.
    YIELDS (module): The ``ray`` module, initialised.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    action = "start a local" if address is None else "connect to"
    where = "" if address is None else f" at '{address}'"
    kwargs: Dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        kwargs["include_dashboard"] = False
    else:
        kwargs["address"] = address
    try:
        if _is_loopback(address) and not str(address or "").startswith("ray://"):
            with loopback_only(ray):
                ray.init(**kwargs)
        else:
            ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError, OSError) as err:
        raise ValueError(Errors.E096.format(action=action, where=where, detail=err)) from err
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def quiet_data_context(ray: Any) -> Iterator[Any]:
    """Ray Data's own progress bars off (the driver shows one bar), restored after."""
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars
    context.enable_progress_bars = False
    try:
        yield context
    finally:
        context.enable_progress_bars = saved


@dataclass
class RaySettings:
    """How a run uses Ray; the same for annotate and evaluate.

    address (Optional[str]): Cluster address ("auto", "HOST:PORT",
        "ray://HOST:PORT"), or None to start a local Ray.
    actors (Optional[int]): Actors in the pool; None: as many as the
        cluster's CPUs (or GPUs, with num_gpus) allow, at most one per block.
    num_cpus (float): CPUs per actor (also torch's thread count).
    num_gpus (float): GPUs per actor (0: none).
    batch_size (int): Lines (documents) per nlp.pipe batch.
    block_batches (int): Batches per block: the unit of reading, retrying and
        (for annotate) of one shard.
    max_restarts (int): Restarts of a killed actor (-1: no limit).
    max_task_retries (int): Retries of a call whose actor died (-1: no limit).
    progress (bool): Show a progress bar on stderr.
    """

    address: Optional[str] = None
    actors: Optional[int] = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batch_size: int = DEFAULT_BATCH_SIZE
    block_batches: int = DEFAULT_BLOCK_BATCHES
    max_restarts: int = DEFAULT_MAX_RESTARTS
    max_task_retries: int = DEFAULT_MAX_TASK_RETRIES
    progress: bool = True

    def check(self) -> None:
        """Raise a coded error for an invalid value."""
        check_batch_size(self.batch_size)
        _check_int("block_batches", self.block_batches, minimum=1)
        if self.actors is not None:
            _check_int("actors", self.actors, minimum=1)
        _check_int("max_restarts", self.max_restarts, minimum=-1)
        _check_int("max_task_retries", self.max_task_retries, minimum=-1)
        for option, value in (("num_cpus", self.num_cpus), ("num_gpus", self.num_gpus)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(Errors.E090.format(option=option, expected="a number >= 0", value=value))
        if self.num_cpus == 0 and self.num_gpus == 0:
            raise ValueError(
                Errors.E090.format(option="num_cpus", expected="above 0 when num_gpus is 0", value=self.num_cpus)
            )
        if self.address is not None and not str(self.address).strip():
            raise ValueError(Errors.E090.format(option="address", expected="an address", value=self.address))

    @property
    def block_size(self) -> int:
        """Lines (documents) per block: a multiple of the batch size."""
        return self.batch_size * self.block_batches

    def to_dict(self) -> Dict[str, Any]:
        return {
            "address": self.address,
            "actors": self.actors,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "batch_size": self.batch_size,
            "block_batches": self.block_batches,
            "block_size": self.block_size,
            "max_restarts": self.max_restarts,
            "max_task_retries": self.max_task_retries,
        }


def _check_int(option: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(Errors.E090.format(option=option, expected=f"an integer >= {minimum}", value=value))


def pool_size(ray: Any, settings: RaySettings, n_blocks: int) -> int:
    if settings.actors is not None:
        return settings.actors
    resources = ray.cluster_resources()
    if settings.num_gpus > 0:
        fit = resources.get("GPU", 0) // settings.num_gpus
    else:
        fit = resources.get("CPU", 1) // settings.num_cpus
    return max(1, min(int(fit), n_blocks))


def map_batches_args(ray: Any, settings: RaySettings, concurrency: int) -> Dict[str, Any]:
    """The actor pool's arguments to Dataset.map_batches."""
    args: Dict[str, Any] = {
        # one block per call: its windows stay whole (see the module docstring)
        "batch_size": 1,
        "batch_format": "numpy",
        "compute": ray.data.ActorPoolStrategy(size=concurrency),
        "num_cpus": settings.num_cpus,
    }
    if settings.num_gpus:
        args["num_gpus"] = settings.num_gpus
    parameters = inspect.signature(ray.data.Dataset.map_batches).parameters.values()
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
        # actor options go through map_batches' **ray_remote_args (deprecated
        # from Ray 2.60 on, where the pool restarts and retries without limit
        # unless told otherwise)
        args["max_restarts"] = settings.max_restarts
        args["max_task_retries"] = settings.max_task_retries
    else:
        logger.info("This Ray takes no actor options; its own restart and retry defaults apply.")
    return args


@contextmanager
def no_remote_args_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        yield


def ray_error_types(ray: Any) -> Tuple[Type[BaseException], ...]:
    return (ray.exceptions.RayError,)


def short_error(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__
