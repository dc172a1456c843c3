"""`mnist-parity bench`, the framework-neutral half: FLOP counts from the plan (flops), the job a bench worker reads
and what a tutorial-style reference loop can express (job), the worker run once per framework (worker, started as
`python -m experiments.bench.worker`), and the printed table and bench.json (results).

Each backend's half is `backends/<name>/reference.py`: `reference_trainer(spec, plan, threads, x, y)` (a training loop
written the way the framework's own tutorials write it) and `gemm_gflops(size, dtype)` (a square matmul timed in that
framework), imported by the worker only, inside the framework's own process.
"""
