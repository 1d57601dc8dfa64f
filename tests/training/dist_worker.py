"""Worker for test_distributed: one rank of a torchrun job; writes its view of the trained weights."""

import json
import os
import sys
from pathlib import Path

from kiwi_platform.training import TrainConfig, train

if __name__ == "__main__":
    config, manifest, data_root, out = TrainConfig(**json.loads(sys.argv[1])), *sys.argv[2:5]
    result = train(config, manifest, data_root, out)
    rank = int(os.environ["RANK"])
    Path(out, f"rank{rank}.json").write_text(
        json.dumps(
            {
                "sha": result.trainable_sha256,
                "losses": result.losses,
                "samples_seen": result.samples_seen,
                "world": int(os.environ["WORLD_SIZE"]),
            }
        )
    )
