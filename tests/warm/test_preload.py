"""What the warm worker imports before forking must not change what a forked command can do or sees.

The torch stack is imported in the worker (kiwi_platform/warm/preload.py) so feature and training
commands skip 5-15 s of imports; a command forked from it must still be able to start CUDA, and its
environment must be what a fresh process's would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from kiwi_platform.warm import preload, protocol, server

# a fresh interpreter (pytest's own may have asked CUDA already): preload, fork, report from both sides
_PROBE = textwrap.dedent(
    """
    import json, os, sys
    from kiwi_platform.warm import preload
    skipped = []
    preload.import_all(skipped.append, torch=True)
    import torch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, json.dumps({"bad_fork": torch.cuda._is_in_bad_fork()}).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = json.loads(os.read(read, 1000))
    print(json.dumps({
        "child_bad_fork": child["bad_fork"],
        "initialized": torch.cuda.is_initialized(),
        "stack": [name for name in preload.TORCH_PRELOAD if name in sys.modules],
        "skipped": skipped,
        "nvml_env": os.environ.get(preload.NVML_CHECK),
        "is_available_restored": torch.cuda.is_available.__module__ == "torch.cuda",
    }))
    """
)


@pytest.mark.slow
def test_preloading_torch_leaves_cuda_usable_in_forked_commands():
    """After the worker imported torch and the model stack, CUDA is not initialised in the worker and a
    process forked from it is not marked as a bad fork (where torch would refuse to start CUDA: a
    feature or training command forked from the worker could not use the GPU). The stack was imported
    (else the test would prove nothing), and the worker's own `torch.cuda` and environment are left as
    they were."""
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["skipped"] == [], report["skipped"]
    assert set(report["stack"]) == set(preload.TORCH_PRELOAD)
    assert report["child_bad_fork"] is False
    assert report["initialized"] is False
    assert report["nvml_env"] is None and report["is_available_restored"]


_GC_PROBE = textwrap.dedent(
    """
    import gc, json, os
    from kiwi_platform.warm import preload
    preload.import_all(print, torch=False)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, json.dumps({"walked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(os.read(read, 1000).decode())
    """
)


@pytest.mark.slow
def test_a_forked_command_does_not_walk_the_workers_objects_when_collecting_garbage():
    """The objects the worker imported are frozen before it forks: a command's garbage collections
    walk only the command's own objects (not the worker's hundreds of thousands, which would cost each
    command about a second and copy over 100 MiB of shared memory)."""
    done = subprocess.run([sys.executable, "-c", _GC_PROBE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["frozen"] > 100_000  # the worker's modules, out of the collector's reach
    assert child["walked"] < child["frozen"] // 20


def test_what_the_imports_set_reaches_the_command_as_in_a_fresh_process():
    """A variable the worker's imports set (torch sets TORCHINDUCTOR_CACHE_DIR, OpenCV prepends to
    LD_LIBRARY_PATH) is in the forked command's environment as its own imports would have left it; a
    caller that set its own value keeps it."""
    before = {"LD_LIBRARY_PATH": "/opt/lib", "HOME": "/root"}
    after = {"LD_LIBRARY_PATH": "/cv2/lib64:/opt/lib", "HOME": "/root", "TORCHINDUCTOR_CACHE_DIR": "/tmp/ti_root"}
    changes = protocol.env_changes(before, after)
    assert protocol.apply_env_changes({"LD_LIBRARY_PATH": "/opt/lib", "X": "1"}, changes) == {
        "LD_LIBRARY_PATH": "/cv2/lib64:/opt/lib",
        "TORCHINDUCTOR_CACHE_DIR": "/tmp/ti_root",
        "X": "1",
    }
    own = {"LD_LIBRARY_PATH": "/mine", "TORCHINDUCTOR_CACHE_DIR": "/scratch/ti"}
    assert protocol.apply_env_changes(own, changes) == own


@pytest.mark.parametrize("name", ["HF_HUB_OFFLINE", "PYTORCH_CUDA_ALLOC_CONF", "CUDA_VISIBLE_DEVICES"])
def test_a_command_with_other_torch_settings_is_refused(name):
    """Settings the torch stack reads at import (or at CUDA start from what it read) make the worker
    refuse a command that sets them differently: it then runs in its own process with its own."""
    request = {"env": {**os.environ, name: "other"}, "python": sys.executable, "cwd": os.getcwd()}
    request["process"] = protocol.process_facts()
    fingerprint = [tuple(f) for f in server.code_fingerprint()]
    env = {k: v for k, v in os.environ.items() if k != name}
    assert name in server._refusal(request, env, fingerprint)
    assert server._refusal({**request, "env": env}, env, fingerprint) == ""


def test_profiling_a_command_does_not_stop_the_worker_running_it():
    """KIWI_PROFILE (cProfile of one command) and KIWI_WORKER are read by the command, not at import:
    setting them never makes the worker refuse."""
    request = {"env": {**os.environ, "KIWI_PROFILE": "/tmp/x.prof"}, "python": sys.executable, "cwd": os.getcwd()}
    request["process"] = protocol.process_facts()
    env = {k: v for k, v in os.environ.items() if k != "KIWI_PROFILE"}
    assert server._refusal(request, env, [tuple(f) for f in server.code_fingerprint()]) == ""
