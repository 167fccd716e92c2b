"""Snapshot export: Kaizen's streaming, columnar export against an ORM row loop, and its memory at scale.

Both exports do the same work on the same pairs in the same PostgreSQL server: read every trainable
pair, scrub PII and secrets from prompt/chosen/rejected, split train/eval by a seeded prompt hash,
write Parquet (zstd) and DPO JSONL. The baseline loads ORM objects and scrubs row by row with
Python's ``re``; Kaizen streams a server-side cursor in partitions and scrubs whole Arrow columns
with RE2. Each export runs in its own process, so its peak resident memory is its own.

    .venv/bin/python bench/export.py [--quick]

Figures: speed ratio on N pairs (1M; quick: 100k), and Kaizen's peak memory exporting 10x the pairs
(5M vs 0.5M; quick: 500k vs 50k).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from controllers.store import migrate
from devstack.postgres import ThrowawayPostgres

# Each child prints "<rows> <seconds>", timing the export itself (imports and start-up excluded).
KAIZEN = """
import sys, time
from pathlib import Path
from controllers.store.db import make_engine
from controllers.store.snapshot import export_dpo
started = time.perf_counter()
snapshot = export_dpo(make_engine(sys.argv[1]), Path(sys.argv[2]))
print(snapshot.train_rows + snapshot.eval_rows, time.perf_counter() - started)
"""

BASELINE = """
import json, sys, time
from collections import Counter
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session
from controllers.store.db import make_engine
from controllers.store.models import PreferencePair
from controllers.data.pii import scrub
from controllers.store.snapshot_files import in_eval

out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
counts = Counter(); buffers = {"train": [], "eval": []}; writers = {}; total = 0
jsonl = {s: (out / f"{s}.jsonl").open("w") for s in buffers}

def flush(split):
    table = pa.Table.from_pylist(buffers[split])
    if split not in writers:
        writers[split] = pq.ParquetWriter(out / f"{split}.parquet", table.schema, compression="zstd")
    writers[split].write_table(table); buffers[split].clear()

started = time.perf_counter()
with Session(make_engine(sys.argv[1])) as session:
    query = select(PreferencePair).where(PreferencePair.review_state != "rejected").order_by(PreferencePair.id)
    for pair in session.execute(query.execution_options(yield_per=1000)).scalars():
        row = {"id": pair.id, "prompt": scrub(pair.prompt, counts), "chosen": scrub(pair.chosen, counts),
               "rejected": scrub(pair.rejected, counts), "source": pair.source, "margin": pair.margin}
        split = "eval" if in_eval(row["prompt"], 42, 0.1) else "train"
        buffers[split].append(row)
        jsonl[split].write(json.dumps({k: row[k] for k in ("prompt", "chosen", "rejected")}) + "\\n")
        total += 1
        if len(buffers[split]) >= 10_000:
            flush(split)
for split in buffers:
    if buffers[split]:
        flush(split)
    if split in writers:
        writers[split].close()
    jsonl[split].close()
print(total, time.perf_counter() - started)
"""

POPULATE = """
INSERT INTO preference_pairs (id, created_at, agent, role, task_family, prompt, chosen, rejected, source, margin,
                              review_state)
SELECT md5(i::text), now() - (i || ' milliseconds')::interval, 'coder', 'coder', 'api',
       'Task ' || i || ': implement the endpoint described in ticket ' || (i %% 9973) || '. '
         || CASE WHEN i %% 10 = 0 THEN 'Contact dev' || i || '@example.com for access. ' ELSE '' END
         || 'It must validate input and return JSON.',
       'def handler_' || i || '(request):' || chr(10) || '    data = validate(request.json)' || chr(10)
         || '    return {"status": "ok", "id": ' || i || ', "items": data.items}',
       'def handler_' || i || '(request):' || chr(10) || '    return request.json  # TODO validate'
         || CASE WHEN i %% 25 = 0 THEN ' key=AKIA' || upper(substr(md5(i::text), 1, 16)) ELSE '' END,
       'rewardGap', 0.5, 'approved'
FROM generate_series(1, %(n)s) AS i
"""


def populate(server: ThrowawayPostgres, name: str, count: int) -> str:
    with psycopg.connect(
        f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}"
    migrate.upgrade(url)
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname={name}") as connection:
        connection.execute(POPULATE, {"n": count})
        connection.execute("ANALYZE preference_pairs")
    return url


def run_export(code: str, url: str, out: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, rows) of one export in its own process."""
    process = subprocess.Popen([sys.executable, "-c", code, url, str(out)], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    assert process.stdout is not None
    rows_text, seconds_text = process.stdout.read().split()
    rows, seconds = int(rows_text), float(seconds_text)
    process.stdout.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"export failed with {process.returncode}")
    return seconds, usage.ru_maxrss / 1024, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, same figures")
    args = parser.parse_args()
    speed_n, small_n, large_n = (100_000, 50_000, 500_000) if args.quick else (1_000_000, 500_000, 5_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = ThrowawayPostgres(work / "pg")
        server.start()
        try:
            print(f"populating {speed_n:,} + {small_n:,} + {large_n:,} pairs …", file=sys.stderr)
            speed_url = populate(server, "speed", speed_n)
            small_url = populate(server, "small", small_n)
            large_url = populate(server, "large", large_n)
            base_s, base_mem, base_rows = run_export(BASELINE, speed_url, work / "baseline")
            kz_s, kz_mem, kz_rows = run_export(KAIZEN, speed_url, work / "kaizen")
            assert base_rows == kz_rows == speed_n, (base_rows, kz_rows)
            small_s, small_mem, _ = run_export(KAIZEN, small_url, work / "small")
            large_s, large_mem, _ = run_export(KAIZEN, large_url, work / "large")
        finally:
            server.stop()
    print(
        f"ORM row loop     : {speed_n:>9,} pairs in {base_s:7.1f}s = {speed_n / base_s:>9,.0f} pairs/s, "
        f"peak {base_mem:,.0f} MiB"
    )
    print(
        f"Kaizen streaming : {speed_n:>9,} pairs in {kz_s:7.1f}s = {speed_n / kz_s:>9,.0f} pairs/s, "
        f"peak {kz_mem:,.0f} MiB"
    )
    print(
        f"Kaizen memory    : {small_n:>9,} pairs peak {small_mem:,.0f} MiB ({small_s:.1f}s); "
        f"{large_n:,} pairs peak {large_mem:,.0f} MiB ({large_s:.1f}s)"
    )
    print(json.dumps({"note": "each export ran in its own process; peak = ru_maxrss"}))
    print(f"RESULT export speedup={base_s / kz_s:.1f} goal>=10")
    print(f"RESULT export memory_ratio_10x_rows={large_mem / small_mem:.2f} goal<=1.2")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
