"""Ray Train's overhead: the same DPO work in one plain process and through Ray Train, side by side.

The work is identical in every run: ``trainer.train.build_trainer`` on the same TrainerConfig (the
kaizen-small model, LoRA on every linear layer, a global batch of 8, the same steps and data), then
``trainer.train()``; no checkpoints in any run. The runs:

- plain: a fresh Python process, torch on both cores (2 threads);
- Ray Train, 1 worker with 2 CPUs (2 threads);
- Ray Train, 2 workers with 1 CPU each (1 thread each, DDP over gloo, batch 4 per worker).

"fixed s" is wall minus the training loop (start-up, imports, loading, tokenising, teardown); the
loop ratio compares the training loops alone. Wall time is from launch to trained: the plain process from spawn to exit (interpreter, imports,
model load, tokenising, training); a Ray run from ``TorchTrainer.fit()`` to its return (worker
processes, imports, process group, the same loading and training). The Ray head is started before
and its start-up is not counted. Each worker sets its thread pools to its CPUs (trainer.worker).

    .venv/bin/python bench/trainer_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# full: about two minutes of training per run on 2 quiet cores (0.4-0.5 s a step), so that Ray's fixed
# start-up cost (worker processes, imports, process group: 5-9 s more than a plain process here) is
# weighed against real work; best of interleaved rounds, so a noisy neighbour cannot pick the winner.
SIZES = {"full": {"steps": 240, "rounds": 2}, "quick": {"steps": 20, "rounds": 1}}
# Set on the cluster (the head's environment, which its workers inherit) rather than by the driver: a
# variable the driver propagates lands in the actors' runtime_env, and then no pre-started worker fits.
CLUSTER_ENV = {
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",  # as trainer.driver does
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",  # notice a finished worker group sooner (default 2s)
}
GOAL = 1.10


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
    """The shared unit of work: build the TRL trainer and train. Returns loop seconds and tokens."""
    from trainer.config import TrainerConfig
    from trainer.data import read_snapshot
    from trainer.train import build_trainer

    config = TrainerConfig.parse(config_json)
    trainer = build_trainer(config, read_snapshot(config.dataset.uri), Path(scratch))
    started = time.monotonic()
    trainer.train()
    return {"loop_seconds": time.monotonic() - started, "tokens": float(trainer.counter.tokens)}


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
    result = root / "plain.json"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, __file__, "--plain", config.model_dump_json(by_alias=True), str(result)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={
            **os.environ,
            "OMP_NUM_THREADS": "2",
            "MKL_NUM_THREADS": "2",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONWARNINGS": "ignore::FutureWarning",
        },
    )
    return {"wall": time.monotonic() - started, **json.loads(result.read_text())}


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
    started = time.monotonic()
    trainer.fit()
    return {"wall": time.monotonic() - started, **json.loads(result.read_text())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps; prints the same RESULT lines")
    parser.add_argument("--plain", nargs=2, metavar=("CONFIG", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:  # the plain-process run, in its own interpreter
        import torch

        torch.set_num_threads(2)
        Path(args.plain[1]).write_text(
            json.dumps(train_once(args.plain[0], tempfile.mkdtemp(prefix="overhead-plain-")))
        )
        return 0

    from trainer import synthetic, tiny
    from trainer.config import Method
    from trainer.localray import LocalRayHead

    size = SIZES["quick" if args.quick else "full"]
    steps, rounds = size["steps"], size["rounds"]
    root = Path(tempfile.mkdtemp(prefix="kaizen-overhead-"))
    os.environ["KAIZEN_CACHE"] = str(root / "cache")
    snapshot = synthetic.write(root / "snapshot", Method.DPO, train=512, eval=8, max_comment_lines=2)
    tiny.resolve("tiny://kaizen-small")  # built once, outside every timed run
    print(
        f"DPO on kaizen-small, global batch 8, {steps} steps, 2 cores, best of {rounds} interleaved"
        " rounds; Ray head start-up not counted"
    )

    head = LocalRayHead(num_cpus=2, env={"KAIZEN_CACHE": os.environ["KAIZEN_CACHE"], **CLUSTER_ENV}).start()
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": head.token})
    runners = {
        "plain process (2 threads)": (run_plain, 1),
        "Ray Train, 2 workers x 1 CPU": (run_ray, 2),
        "Ray Train, 1 worker x 2 CPUs": (run_ray, 1),
    }
    runs: dict[str, dict[str, float]] = {}
    try:
        import ray

        ray.init(address=head.gcs_address, log_to_driver=False)
        for round_ in range(rounds):
            for name, (runner, workers) in runners.items():
                config = bench_config(root, snapshot.uri, workers, steps)
                run = runner(config.model_copy(update={"run_name": f"{config.run_name}-{round_}"}), root)
                print(f"  round {round_ + 1}: {name}: {run['wall']:.1f}s", flush=True)
                if name not in runs or run["wall"] < runs[name]["wall"]:
                    runs[name] = run
        ray.shutdown()
    finally:
        head.stop()

    plain = runs["plain process (2 threads)"]
    print(
        f"{'run':<30} {'wall s':>7} {'loop s':>7} {'fixed s':>8} {'tokens/s':>9} {'loop ratio':>11} {'wall ratio':>11}"
    )
    for name, run in runs.items():
        print(
            f"{name:<30} {run['wall']:>7.1f} {run['loop_seconds']:>7.1f} {run['wall'] - run['loop_seconds']:>8.1f}"
            f" {run['tokens'] / run['loop_seconds']:>9.0f} {run['loop_seconds'] / plain['loop_seconds']:>10.2f}x"
            f" {run['wall'] / plain['wall']:>10.2f}x"
        )
    two, one = runs["Ray Train, 2 workers x 1 CPU"], runs["Ray Train, 1 worker x 2 CPUs"]
    print(f"RESULT trainer_overhead ray_2workers_vs_plain={two['wall'] / plain['wall']:.2f} goal<={GOAL}")
    print(f"RESULT trainer_overhead ray_1worker_vs_plain={one['wall'] / plain['wall']:.2f} goal<={GOAL}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
