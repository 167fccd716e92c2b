"""Ray Train's overhead: the same DPO work in plain processes and through Ray Train, side by side.

The work is identical in every run: ``trainer.train.build_trainer`` on the same TrainerConfig (the
kaizen-small model, LoRA on every linear layer, a global batch of 8, the same steps and data, the
reference log-probs precomputed), then ``trainer.train()``; no checkpoints in any run. The runs:

- plain process: a fresh Python process, torch on both cores (2 threads);
- 2 plain processes: two fresh processes in a gloo process group, 1 thread each, batch 4 each (DDP,
  as torchrun would run it): the same parallel layout as Ray's two workers, without Ray;
- Ray Train, 1 worker with 2 CPUs (2 threads);
- Ray Train, 2 workers with 1 CPU each (1 thread each, DDP over gloo, batch 4 per worker).

Ray's overhead is each Ray run against the plain run of the same layout; the two-worker Ray run is
also set against the one plain process, which adds what data parallelism itself costs on two cores.
Wall time is from launch to trained: plain processes from spawn to exit, a Ray run from
``TorchTrainer.fit()`` to its return. Its parts: start (spawn to the worker function: interpreters,
Ray's actors, torch, process group), build (imports, model, tokenising, reference precompute),
loop (``trainer.train()``), end (to exit or to ``fit()`` returning). The Ray head is started before
and its start-up is not counted. Each worker sets its thread pools to its CPUs (trainer.worker).

    .venv/bin/python bench/trainer_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# full: over two minutes of training per run on 2 quiet cores (~0.2 s a step), so that
# Ray's fixed start-up (its actors' processes, 7-10 s more than a plain process here) is weighed
# against real work.
SIZES = {"full": {"steps": 600, "rounds": 3}, "quick": {"steps": 20, "rounds": 1}}
# Set on the cluster (the head's environment, which its workers inherit) rather than by the driver: a
# variable the driver propagates lands in the actors' runtime_env, and then no pre-started worker fits.
CLUSTER_ENV = {
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",  # as trainer.driver does
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",  # notice a finished worker group sooner (default 2s)
}
GOAL = 1.10
PLAIN, PLAIN_DDP = "plain process (2 threads)", "2 plain processes, gloo"
RAY_TWO, RAY_ONE = "Ray Train, 2 workers x 1 CPU", "Ray Train, 1 worker x 2 CPUs"


def bench_config(root: Path, snapshot_uri: str, workers: int, steps: int) -> Any:
    from trainer.config import (
        BaseModelSpec,
        Checkpointing,
        DatasetSpec,
        Hyperparameters,
        LoRA,
        Scaling,
        TrainerConfig,
    )

    return TrainerConfig(
        run_name=f"overhead-{workers}w",
        base_model=BaseModelSpec(name="kaizen-small", uri="tiny://kaizen-small"),
        lora=LoRA(
            rank=16,
            alpha=32,
            dropout=0.0,
            target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        ),
        hyperparameters=Hyperparameters(
            learning_rate=1e-3, batch_size=8 // workers, max_steps=steps, max_length=512
        ),
        dataset=DatasetSpec(uri=snapshot_uri),
        output_uri=str(root / f"out-{workers}w"),
        scaling=Scaling(workers=workers, cpus_per_worker=2 // workers),
        checkpointing=Checkpointing(every_steps=1_000_000),
    )


def train_once(config_json: str, scratch: str) -> dict[str, float]:
    """The shared unit of work: build the TRL trainer and train. Returns loop seconds, tokens and
    wall-clock marks (time.time(), comparable across the processes of one machine)."""
    entered = time.time()
    from trainer.config import TrainerConfig
    from trainer.data import read_snapshot
    from trainer.train import build_trainer

    config = TrainerConfig.parse(config_json)
    trainer = build_trainer(config, read_snapshot(config.dataset.uri), Path(scratch))
    built = time.time()
    started = time.monotonic()
    trainer.train()
    loop = time.monotonic() - started
    return {
        "loop_seconds": loop,
        "tokens": float(trainer.counter.tokens),
        "entered": entered,
        "built": built,
        "trained": time.time(),
    }


def ray_worker(payload: dict[str, Any]) -> None:
    """What each Ray Train worker runs: threads sized to its CPUs, then the shared unit of work."""
    import ray.train
    import torch

    from trainer.worker import configure_threads

    configure_threads(payload["cpus"])
    rank = ray.train.get_context().get_world_rank()
    result = train_once(payload["config"], tempfile.mkdtemp(prefix=f"overhead-rank{rank}-"))
    tokens = torch.tensor([result["tokens"]])
    torch.distributed.all_reduce(tokens)  # every worker's tokens, so tokens/s compares across runs
    result["tokens"] = float(tokens.item())
    if rank == 0:
        Path(payload["result"]).write_text(json.dumps(result))


def run_plain(config: Any, root: Path) -> dict[str, float]:
    """One plain process (2 threads), or for a two-worker config two plain processes in a gloo
    process group (1 thread each): the same parallel layout as Ray Train's, without Ray."""
    from devstack.ports import free_port

    workers = config.scaling.workers
    result = root / f"plain-{workers}.json"
    threads = str(config.scaling.cpus_per_worker)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore::FutureWarning",
    }
    group = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(workers)}
    command = [sys.executable, __file__, "--plain", config.model_dump_json(by_alias=True), str(result)]
    launched = time.time()
    started = time.monotonic()
    ranks = [
        subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            env={**env, **({**group, "RANK": str(rank), "LOCAL_RANK": str(rank)} if workers > 1 else {})},
        )
        for rank in range(workers)
    ]
    if any(rank.wait() != 0 for rank in ranks):
        raise RuntimeError(f"a plain process of {config.run_name} failed")
    return {"wall": time.monotonic() - started, "launched": launched, **json.loads(result.read_text())}


def plain_process(config_json: str, result: str) -> None:
    """One plain process: threads from OMP_NUM_THREADS; in a process group when WORLD_SIZE says so."""
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    grouped = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if grouped:
        torch.distributed.init_process_group("gloo")
    run = train_once(config_json, tempfile.mkdtemp(prefix="overhead-plain-"))
    if grouped:
        tokens = torch.tensor([run["tokens"]])
        torch.distributed.all_reduce(tokens)
        run["tokens"] = float(tokens.item())
        torch.distributed.destroy_process_group()
    if os.environ.get("RANK", "0") == "0":
        Path(result).write_text(json.dumps(run))


def run_ray(config: Any, root: Path) -> dict[str, float]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    result = root / f"ray-{config.scaling.workers}w.json"
    trainer = TorchTrainer(
        ray_worker,
        train_loop_config={
            "config": config.model_dump_json(by_alias=True),
            "cpus": config.scaling.cpus_per_worker,
            "result": str(result),
        },
        scaling_config=ScalingConfig(
            num_workers=config.scaling.workers,
            resources_per_worker={"CPU": float(config.scaling.cpus_per_worker)},
        ),
        run_config=RunConfig(name=config.run_name, storage_path=str(root / "ray-storage")),
    )
    launched = time.time()
    started = time.monotonic()
    trainer.fit()
    return {"wall": time.monotonic() - started, "launched": launched, **json.loads(result.read_text())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps; prints the same RESULT lines")
    parser.add_argument("--plain", nargs=2, metavar=("CONFIG", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:  # a plain-process run, in its own interpreter
        plain_process(*args.plain)
        return 0

    from devstack import synthetic
    from devstack.localray import LocalRayHead
    from trainer import tiny
    from trainer.config import Method

    size = SIZES["quick" if args.quick else "full"]
    steps, rounds = size["steps"], size["rounds"]
    root = Path(tempfile.mkdtemp(prefix="kaizen-overhead-"))
    os.environ["KAIZEN_CACHE"] = str(root / "cache")
    snapshot = synthetic.write(root / "snapshot", Method.DPO, train=512, eval=8, max_comment_lines=2)
    tiny.resolve("tiny://kaizen-small")  # built once, outside every timed run
    print(
        f"DPO on kaizen-small, global batch 8, {steps} steps, 2 cores, {rounds} rounds; each Ray run"
        " beside its plain baseline (order alternating by round); Ray head start-up not counted"
    )

    head = LocalRayHead(num_cpus=2, env={"KAIZEN_CACHE": os.environ["KAIZEN_CACHE"], **CLUSTER_ENV}).start()
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": head.token})
    runners = {PLAIN: (run_plain, 1), RAY_ONE: (run_ray, 1), PLAIN_DDP: (run_plain, 2), RAY_TWO: (run_ray, 2)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    try:
        import ray

        ray.init(address=head.gcs_address, log_to_driver=False)
        for round_ in range(rounds):
            for pair in ((PLAIN, RAY_ONE), (PLAIN_DDP, RAY_TWO)):
                # Side by side, and the other way round next time: a slow spell of a noisy machine
                # then weighs on both sides of a ratio, not on one configuration's best run.
                for name in pair if round_ % 2 == 0 else pair[::-1]:
                    runner, workers = runners[name]
                    config = bench_config(root, snapshot.uri, workers, steps)
                    run = runner(config.model_copy(update={"run_name": f"{config.run_name}-{round_}"}), root)
                    print(f"  round {round_ + 1}: {name}: {run['wall']:.1f}s", flush=True)
                    runs[name].append(run)
        ray.shutdown()
    finally:
        head.stop()

    print(
        f"medians of {rounds} rounds:\n{'run':<30} {'wall s':>7} {'start s':>8} {'build s':>8} {'loop s':>7}"
        f" {'end s':>6} {'tokens/s':>9}"
    )
    for name, done in runs.items():
        parts = [
            (r["wall"], r["entered"] - r["launched"], r["built"] - r["entered"], r["loop_seconds"],
             r["launched"] + r["wall"] - r["trained"], r["tokens"] / r["loop_seconds"])
            for r in done
        ]  # fmt: skip
        wall, start, build, loop, end, speed = (
            statistics.median(column) for column in zip(*parts, strict=True)
        )
        print(f"{name:<30} {wall:>7.1f} {start:>8.1f} {build:>8.1f} {loop:>7.1f} {end:>6.1f} {speed:>9.0f}")

    def ratio(name: str, baseline: str, key: str = "wall") -> float:
        """The median over rounds of each round's ratio."""
        return statistics.median(r[key] / b[key] for r, b in zip(runs[name], runs[baseline], strict=True))

    print(
        f"training loops alone: Ray 1 worker {ratio(RAY_ONE, PLAIN, 'loop_seconds'):.2f}x its plain"
        f" process, Ray 2 workers {ratio(RAY_TWO, PLAIN_DDP, 'loop_seconds'):.2f}x its plain processes;"
        f" data parallelism itself (no Ray): 2 plain processes {ratio(PLAIN_DDP, PLAIN):.2f}x 1"
    )
    print(f"RESULT trainer_overhead ray_1worker_vs_plain={ratio(RAY_ONE, PLAIN):.2f} goal<={GOAL}")
    print(f"RESULT trainer_overhead ray_2workers_vs_plain_ddp={ratio(RAY_TWO, PLAIN_DDP):.2f} goal<={GOAL}")
    print(f"RESULT trainer_overhead ray_2workers_vs_plain={ratio(RAY_TWO, PLAIN):.2f} goal<={GOAL}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
