"""Harness window and bare loop alternately in the same worker processes (A/B/B/A).

    accelerate launch ... benchmarks/window_ab.py CONFIG.json OUT_DIR PAIRS

harness_overhead.py --same-processes launches this. Each pair runs joulebench's own
experiment code (``joulebench.runner.worker.run``: meter, step clock, write-behind
checkpoints, barriers) and ``bare_generate.bare_window`` on the one loaded model, in the
same processes, so what differs between the two windows is the harness and nothing else:
not process placement, not memory layout, not a fresh launch. Every process writes
``ab_rank{r}.json``: per run, which side, output tokens and the window in seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bare_generate import bare_window

from joulebench.config.models import ExperimentConfig
from joulebench.runner.model import ModelCache
from joulebench.runner.worker import run


def main() -> None:
    import torch
    from accelerate import Accelerator

    cfg = ExperimentConfig.model_validate(json.loads(Path(sys.argv[1]).read_text()))
    out_dir, pairs = Path(sys.argv[2]), int(sys.argv[3])
    acc = Accelerator(cpu=cfg.device == "cpu")
    models = ModelCache()
    runs = []
    order = [
        side
        for i in range(pairs)
        for side in (("harness", "bare") if i % 2 == 0 else ("bare", "harness"))
    ]
    for n, side in enumerate(order):
        if side == "bare":
            torch.manual_seed(cfg.seed + acc.process_index)
            (model, tok), _ = models.get(cfg, cfg.device, acc.device)
            tokens, window_s = bare_window(cfg, acc, model, tok)
        else:
            work = out_dir / f"exp{n}"
            work.mkdir(exist_ok=True)
            task = {
                "config": cfg.model_dump(mode="json"),
                "work_dir": str(work),
                "experiment_id": f"{n:04d}",
                "config_hash": "ab",
                "batch_size": None,
            }
            result = run(task, acc, cfg.device, models)
            outside = {str(i) for i in result["outside_window_batches"]}
            tokens = sum(
                b["output_tokens"] for i, b in result["batches"].items() if i not in outside
            )
            window_s = result["window_s"]
        runs.append({"side": side, "output_tokens": tokens, "window_s": window_s})
    (out_dir / f"ab_rank{acc.process_index}.json").write_text(json.dumps(runs))


if __name__ == "__main__":
    main()
