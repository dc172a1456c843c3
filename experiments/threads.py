"""The environment every backend worker process starts with: thread counts and the math libraries' settings.

Framework-neutral (no framework import): these variables must be in place before a worker imports
its framework, so the runner passes them to the worker process it starts.

Why each variable (issue 10: torch at 2 threads gave two different test losses from one spec on a
busy machine, and ran 14x slower there than at 1 thread). torch 2.13 CPU uses MKL 2024.2 with the
GNU OpenMP runtime (libgomp); TensorFlow and jaxlib link no OpenMP runtime or MKL and size their
own thread pools. Measured with `python -m experiments.stress reproducibility` (mlp-relu-adam, 1 epoch,
seed 2, 3 training processes as load): the old environment (thread counts only) gave two distinct
test losses in 40 runs, this one a single value in 80. Which variable removed the flip was not
isolated (the wait policy alone gave a single value in 45 runs, little proof at a 5% flip rate), so
every documented reproducibility condition below is kept.

- OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS: the worker's thread count for every
  OpenMP region, MKL and OpenBLAS (NumPy). MKL_NUM_THREADS takes precedence over OMP_NUM_THREADS
  for MKL (PyTorch docs, "Threading Environment Variables"), so both are set.
- OMP_DYNAMIC=FALSE, MKL_DYNAMIC=FALSE: the runtimes may not pick fewer threads than asked.
  oneMKL's "Reproducibility Conditions" require a fixed thread count and both set to FALSE;
  MKL_DYNAMIC defaults to TRUE ("MKL_DYNAMIC", oneMKL developer guide) and libgomp's OMP_DYNAMIC
  to false. (torch.set_num_threads also calls mkl_set_dynamic(0); the variable makes it hold from
  process start, before any trainer exists.)
- MKL_CBWR=AUTO: oneMKL's conditional numerical reproducibility, AUTO branch: the CPU's usual code
  path "while ensuring fixed cache sizes, deterministic reductions, and static scheduling"
  ("Specifying Code Branches"); without a CNR mode oneMKL does not promise run-to-run identical
  results. AUTO keeps the CPU's fastest instructions (the test loss of issue 10 is unchanged), so
  results are reproducible on the same CPU and software, not across CPU models (that would need a
  fixed branch such as AVX2, and is not claimed).
- OMP_WAIT_POLICY=PASSIVE: a libgomp thread waiting at a barrier sleeps instead of spinning
  (GOMP_SPINCOUNT defaults to 0 with PASSIVE, to 300,000 spins when the policy is unset; libgomp
  manual). On a busy machine a spinning thread burns the CPU time its partner needs to reach the
  barrier: the collapse of issue 10 (`python -m experiments.stress threads`: 2 threads under load
  went from 21x to 1.3x the time of 1 thread). Chosen for speed; no documented effect on results.

Precedence: the thread counts and the reproducibility variables always replace the parent's value
(results and the record depend on them). The wait policy, chosen for speed, keeps a value the user set
(OMP_WAIT_POLICY or GOMP_SPINCOUNT in the parent's environment), e.g. ACTIVE on a dedicated machine.
Each trainer's settings() reads these variables back from its own process environment.
"""

import os

WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # speed only; a user's own value is kept


def thread_settings(threads: int) -> dict[str, str]:
    """The variables this module sets for a worker that runs `threads` threads, and their values."""
    count = str(threads)
    return {
        "OMP_NUM_THREADS": count,
        "MKL_NUM_THREADS": count,
        "OPENBLAS_NUM_THREADS": count,
        "OMP_DYNAMIC": "FALSE",
        "MKL_DYNAMIC": "FALSE",
        "MKL_CBWR": "AUTO",
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def worker_environment(threads: int) -> dict[str, str]:
    """The parent's environment with the thread settings of a worker that runs `threads` threads.

    The wait policy is left as the user set it when OMP_WAIT_POLICY or GOMP_SPINCOUNT is already
    in the environment (either one decides libgomp's waiting); everything else is replaced.
    """
    settings = thread_settings(threads)
    if any(name in os.environ for name in WAIT_VARIABLES):
        del settings["OMP_WAIT_POLICY"]
    return {**os.environ, **settings}


def seen_settings() -> dict[str, str | None]:
    """This process's value (None: unset) of every variable thread_settings sets, and GOMP_SPINCOUNT, for the record."""
    return {name: os.environ.get(name) for name in (*thread_settings(1), "GOMP_SPINCOUNT")}
