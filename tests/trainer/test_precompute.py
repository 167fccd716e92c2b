"""Reference log-probs precomputed by two ranks equal those of one process, row for row.

Two real processes join a gloo process group (as Ray Train's workers do) and each builds the trainer;
KaizenDPOTrainer then computes each rank's share and gathers it. Every rank must end up with the same
columns as TRL's own single-process precompute, in the dataset's order, including the last uneven batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import synthetic
from devstack.ports import free_port
from tests.trainer.support import tiny_config
from trainer.config import Efficiency, Method, TrainerConfig
from trainer.data import read_snapshot
from trainer.train import build_trainer

ROOT = Path(__file__).resolve().parents[2]
# One rank of the group: join it, build the trainer, write its reference columns.
RANK_SCRIPT = """
import json, sys
from pathlib import Path
import torch.distributed as dist
from trainer.config import TrainerConfig
from trainer.data import read_snapshot
from trainer.train import build_trainer

config_json, scratch, out = sys.argv[1:4]
dist.init_process_group("gloo")
config = TrainerConfig.parse(config_json)
trainer = build_trainer(config, read_snapshot(config.dataset.uri), Path(scratch))
rows = trainer.train_dataset
Path(out).write_text(json.dumps([list(rows["ref_chosen_logps"]), list(rows["ref_rejected_logps"])]))
dist.destroy_process_group()
"""


def _config(tmp_path: Path, workers: int) -> TrainerConfig:
    # 37 rows with batches of 4 per rank: the last step has one row for rank 0 and none for rank 1.
    snapshot = synthetic.write(tmp_path / "snapshot", Method.DPO, train=37, eval=4, seed=3)
    config = tiny_config(tmp_path, f"pre-{workers}", Method.DPO, snapshot, workers=workers)
    return config.model_copy(update={"efficiency": Efficiency(precompute_ref_log_probs=True)})


def test_two_ranks_precompute_the_same_reference_log_probs_as_one_process(
    tmp_path: Path, model_cache: Path
) -> None:
    one = _config(tmp_path, workers=1)
    single = build_trainer(one, read_snapshot(one.dataset.uri), tmp_path / "single").train_dataset
    expected = [list(single["ref_chosen_logps"]), list(single["ref_rejected_logps"])]  # type: ignore[index]

    two = _config(tmp_path, workers=2).model_dump_json(by_alias=True)
    port = str(free_port())
    ranks = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "OMP_NUM_THREADS": "1",
            "KAIZEN_CACHE": str(model_cache),
        }
        out = tmp_path / f"rank{rank}.json"
        command = [sys.executable, "-c", RANK_SCRIPT, two, str(tmp_path / f"scratch{rank}"), str(out)]
        ranks.append((subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE), out))
    for process, out in ranks:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()[-3000:]
        chosen, rejected = json.loads(out.read_text())
        assert len(chosen) == len(rejected) == 37
        assert chosen == pytest.approx(expected[0], abs=1e-4)
        assert rejected == pytest.approx(expected[1], abs=1e-4)
