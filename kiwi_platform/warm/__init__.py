"""The warm worker: `kiwi` commands forked from a process that has already imported everything.

Why: a `kiwi` command on a 5-pair batch spends 5-16 s before and around its work, most of it
importing (Great Expectations ~4 s, Dagster and pandas ~1.5 s, the code location ~1-2.5 s), which
a fresh Python process pays every time. `kiwi worker start` starts one process per KIWI_HOME
that imports all of it once and then waits on a Unix socket. Each `kiwi` command connects, hands
over its argv, environment, working directory and its stdin/stdout/stderr (file descriptors,
passed over the socket), and the worker forks a copy of itself to run it: the command runs as it
would have in its own process, at the cost of a fork.

The worker refuses (and the command runs in its own process, as without a worker) when the
command's environment differs from the worker's in a variable the imported modules may have read
(KIWI_*, DAGSTER_*, MLFLOW_*, DVC_*, RAY_*, AWS_*, LAKEFS_*, PYTHON*, OMP_*, OPENBLAS_*, MKL_*, and
for the torch stack TORCH*, PYTORCH_*, CUDA_*, NVIDIA_*, HF_* and the like), or when the code on disk
changed since the worker imported it. A command is never lost to the worker: any failure to reach
it means running in place.
"""
