"""The code location the Dagster UI loads, named once, so that runs started by `kiwi` are its runs.

The UI places a run by the code-location origin recorded on it: the Overview timeline drops a run
without one ("No runs" after a whole `kiwi demo`), and a job's run list, the run page's job link
and re-execution all look the job up by location, repository and job name. `kiwi ui` (and
`dagster-webserver -m kiwi_platform.definitions`) load this module as a code location named after
the module; CLI runs record the origin Dagster itself builds for that target, so they land in the
same location as runs launched from the UI.
"""

from __future__ import annotations

import sys

import dagster as dg

MODULE = "kiwi_platform.definitions"
ATTRIBUTE = "defs"
#: what `dagster dev -m MODULE` / `dagster-webserver -m MODULE` calls the location (the module name)
LOCATION_NAME = MODULE
REPOSITORY_NAME = "__repository__"  # the repository a `dg.Definitions` object becomes


def is_code_location(defs: dg.Definitions) -> bool:
    """Whether `defs` is (a rebuild of) the code location: the module's object, or one with the same assets.

    Tests and `kiwi` commands build the definitions again for another KIWI_HOME; those are still the
    location's jobs. Definitions made for one script (a test's single asset) are not: their runs stay
    ad hoc rather than claim a job the UI cannot show.
    """
    module = sys.modules.get(MODULE)
    location_defs = getattr(module, ATTRIBUTE, None)
    if location_defs is None:
        return False
    if defs is location_defs:
        return True
    mine = defs.resolve_asset_graph().get_all_asset_keys()
    return mine == location_defs.resolve_asset_graph().get_all_asset_keys()


def job_origins(job_name: str):
    """(remote origin, code origin) of `job_name` in the code location, as the UI records them on its runs.

    The remote origin names location, repository and job (what the UI groups and links by); the code
    origin says how a run worker would load the job (module and attribute, this Python).
    """
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.workspace.load import location_origin_from_module_name

    location = location_origin_from_module_name(MODULE, None, None, location_name=LOCATION_NAME)
    remote = RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)
    code = ReconstructableRepository.for_module(MODULE, ATTRIBUTE).get_reconstructable_job(job_name)
    return remote, code.get_python_origin()
