"""What the warm worker imports before it forks commands, and how it imports torch without breaking CUDA.

Every module a command would import itself costs that command its import time again (a forked
command shares what the worker imported, nothing else). The lists below are what the stage
commands import (`KIWI_PROFILE=FILE kiwi ...` writes FILE.imports: what a command still imported
itself). Importing never runs our code's work and starts no thread, so a fork stays safe.

torch is the one that needs care. Importing it does not touch CUDA, but diffusers asks
`torch.cuda.is_available()` at import, and the CUDA runtime's answer (`cudaGetDeviceCount`)
initialises the driver and marks every later fork as unable to use CUDA ("Cannot re-initialize
CUDA in forked subprocess"). So the worker imports the torch stack only where the question can be
answered without CUDA: through NVML (PYTORCH_NVML_BASED_CUDA_CHECK, torch's fork-safe check), or,
on a host with no NVIDIA driver, as "no" (what CUDA would answer there). A host with a driver whose
NVML does not answer gets no torch preload: its feature commands import torch themselves.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator

# what a kiwi command imports before doing anything (~7-9 s in a fresh process on 2 cores)
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "dagster",
    "great_expectations",
    "dvc.repo",
    "cv2",
    "av",
    "PIL.Image",
    "kiwi_platform.cli",
    "kiwi_platform.definitions",
    # imported on the way by a run: instance storage, the selection parser, DVC's git backends
    "sqlalchemy",
    "alembic.command",
    "alembic.config",
    "dagster._core.definitions.antlr_asset_selection.antlr_asset_selection",
    "pygments.lexers",
    "pygit2",
    "dulwich.repo",
    "scmrepo.git",
    "dvc.repo.add",
    "dvc_render",
    "structlog",
    "upath",
    # what every `kiwi ingest` / `kiwi materialize` still imported itself (0.5-1 s per command):
    # the runner, opening the SQLite instance (storages, daemon and workspace modules it names),
    # executing a run in process, and a DVC publish (index, lock, push)
    "kiwi_platform.runner",
    "kiwi_platform.code_location",
    "kiwi_platform.lib.dead_runs",
    "dagster._core.instance.factory",
    "dagster._core.instance.runs.run_domain",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.executor.in_process",
    "dagster._core.snap",
    "dagster._core.workspace.context",
    "dagster._core.workspace.load",
    "dagster._core.remote_representation",
    "dagster._core.scheduler",
    "dagster._core.secrets",
    "dagster._core.debug",
    "dagster._daemon",
    "dagster._scheduler",
    "dagster._grpc",
    "sqlalchemy.dialects.mysql",
    "watchdog.observers",
    "psutil",
    "dotenv",
    "platformdirs",
    "dvc.repo.index",
    "dvc.repo.worktree",
    "dvc.repo.stage",
    "dvc.repo.brancher",
    "dvc.repo.artifacts",
    "dvc.repo.datasets",
    "dvc.repo.metrics",
    "dvc.repo.params",
    "dvc.repo.plots",
    "dvc.lock",
    "dvc.rwlock",
    "dvc.data_cloud",
    "dvc.cachemgr",
    "dvc.scm",
    "dvc_data.index.checkout",
    "dvc_data.index.fetch",
    "dvc_data.index.push",
    "dvc_data.hashfile.db.local",
    "dvc_data.hashfile.status",
    "flufl.lock",
    "zc.lockfile",
    "configobj",
    "scmrepo.noscm",
    "scmrepo.git.backend.pygit2.filter",
    "dulwich.index",
    "upath.implementations.local",
    "pyarrow.dataset",
    "pyarrow.pandas_compat",
    "PIL.PngImagePlugin",
    "PIL.JpegImagePlugin",
    "av.subtitles.stream",
    "rich.status",
    "dagster._core.execution.execute_in_process",
    "dagster._core.execution.plan.active",
    "dagster._core.definitions.external_asset",
    "dagster._core.storage.migration.utils",
    "dagster._core.secrets.env_file",
    "dulwich.worktree",
    "dulwich.ignore",
    "dvc.utils.strictyaml",
    "dvc_data.hashfile.db.index",
    "pandas.core.methods.to_dict",
)
# the feature stage (and training): ~700 MiB of RSS in the worker, 5-15 s off each such command
TORCH_PRELOAD = (
    "torch",
    "diffusers",
    "transformers",
    "peft",
    "model.build",
    "model.pipeline",
    "model.mllm_encoder",
    "model.processor",
    "model.released",
    "model.vae",
    "kiwi_platform.features.build",
    "kiwi_platform.features.encoders",
)
NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def import_all(log: Callable[[str], None], torch: bool = True) -> None:
    """Import PRELOAD (and resolve the code location's job), and TORCH_PRELOAD where that leaves CUDA
    usable in forked commands; then freeze what was imported out of the garbage collector's reach."""
    _import(PRELOAD, log)
    _resolve_definitions(log)
    if torch:
        _import_torch(log)
    freeze()


def freeze() -> None:
    """Move every object alive now into the collector's permanent generation (gc.freeze).

    Without it, each full collection in a forked command walks the worker's ~0.5-0.9 M objects:
    ~1 s of CPU, and writing their GC headers copies ~130-240 MiB of shared pages into the command
    (measured on 2 cores). Frozen, they are never walked (nor collected: they are the worker's
    modules, alive for good anyway); the command's own objects are collected as before.
    """
    import gc

    gc.collect()
    gc.freeze()


def _import_torch(log: Callable[[str], None]) -> None:
    try:
        import torch as _torch  # importing torch itself never touches CUDA
    except ImportError as exc:
        log(f"not preloaded: torch ({exc})")
        return
    with _fork_safe_cuda_check(_torch) as why_not:
        if why_not:
            log(f"not preloaded: torch and the model stack ({why_not})")
            return
        _import(TORCH_PRELOAD, log)


def _resolve_definitions(log: Callable[[str], None]) -> None:
    """Build what every run derives from the code location and caches on it (repository, asset
    job, job snapshot; ~0.15 s a command): pure functions of the definitions the worker imported."""
    try:
        from kiwi_platform.definitions import defs

        defs.get_repository_def()
        defs.resolve_implicit_global_asset_job_def().get_job_snapshot()
    except Exception as exc:  # noqa: BLE001 - a command then resolves them itself, as in its own process
        log(f"not resolved in advance: the code location's job ({type(exc).__name__}: {exc})")


def _import(names: tuple[str, ...], log: Callable[[str], None]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a library moved a module: that command pays the import, nothing more
            log(f"not preloaded: {name} ({exc})")


def has_nvidia_driver() -> bool:
    """An NVIDIA kernel driver is loaded (without one, CUDA cannot initialise on this host)."""
    return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidiactl")


@contextlib.contextmanager
def _fork_safe_cuda_check(torch) -> Iterator[str]:
    """While inside, `torch.cuda.is_available()` answers without initialising CUDA; yields '' when it
    can, else why not (then nothing may import the torch stack)."""
    if not torch.backends.cuda.is_built():
        yield ""  # a CPU build never initialises CUDA
        return
    if torch.cuda._device_count_nvml() >= 0:  # NVML answers (it does not initialise CUDA)
        before = os.environ.get(NVML_CHECK)
        os.environ[NVML_CHECK] = "1"
        try:
            yield ""
        finally:
            if before is None:
                os.environ.pop(NVML_CHECK, None)
            else:
                os.environ[NVML_CHECK] = before
        return
    if has_nvidia_driver():
        yield "an NVIDIA driver is loaded but NVML does not answer, so asking for CUDA would initialise it"
        return
    asked = torch.cuda.is_available
    torch.cuda.is_available = lambda: False  # no driver: what CUDA would answer, without asking it
    try:
        yield ""
    finally:
        torch.cuda.is_available = asked
