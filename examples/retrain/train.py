#!/usr/bin/env python3
"""Train on the dataset version a dsv hook (or `dsv watch --exec`) names, read in
place through `view.torch()`: no checkout, no export.

The payload (`dsv.hook/1`, on stdin) names the commit (`commit`); `DSV_COMMIT`
does too. The repository is the hook's own (`DSV_REPO`) or, with `DSV_REMOTE_URL`
set (a training box), that remote read in place with its frames cached under
`DSV_CACHE_DIR`. The "model" is a stand-in (per-class box counts and mean sizes)
trained through a PyTorch DataLoader when torch is installed, else through the
same dataset iterated directly; it is written to $RETRAIN_DIR/<commit>/model.json
and a commit already trained is skipped.

    [[hooks]]
    id = "retrain"
    event = "branch-updated"
    branches = ["main"]
    run = "python3 /opt/dsv/examples/retrain/train.py"
"""

import json
import os
import sys
from pathlib import Path

import dsv


def open_repository():
    url = os.environ.get("DSV_REMOTE_URL")
    if url:
        cache = os.environ.get("DSV_CACHE_DIR", os.path.expanduser("~/.cache/dsv-read"))
        return dsv.Repository.open_remote(url, cache_dir=cache)
    return dsv.Repository(os.environ.get("DSV_REPO", "."))


def batches(dataset, batch_size=64, workers=2):
    """Yields lists of samples: through a torch DataLoader when torch is here."""
    try:
        from torch.utils.data import DataLoader
    except ImportError:
        batch = []
        for s in dataset:
            batch.append(s)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                        collate_fn=lambda b: b)
    yield from loader


def to_sample(s):
    # The transform a real job would decode the image in; here: the boxes.
    return {"bytes": len(s["data"]),
            "boxes": [(o["class"], o["box"]["w"], o["box"]["h"])
                      for o in s["objects"] if "box" in o]}


def main():
    raw = sys.stdin.read() if not sys.stdin.isatty() else ""
    payload = json.loads(raw) if raw.strip() else {}
    commit = payload.get("commit") or os.environ.get("DSV_COMMIT")
    if not commit:
        print("train.py: no commit in the payload or DSV_COMMIT", file=sys.stderr)
        return 2
    out = Path(os.environ.get("RETRAIN_DIR", os.path.expanduser("~/.cache/dsv-retrain"))) / commit
    if (out / "model.json").exists():
        print(f"train.py: {commit[:12]} already trained")
        return 0
    repo = open_repository()
    view = repo.frames(commit, where=os.environ.get("TRAIN_WHERE") or None)
    dataset = view.torch(transform=to_sample, shuffle=True, seed=0, iterable=True)
    stats, frames, nbytes = {}, 0, 0
    for batch in batches(dataset):
        for s in batch:
            frames += 1
            nbytes += s["bytes"]
            for cls, w, h in s["boxes"]:
                n, sw, sh = stats.get(cls, (0, 0.0, 0.0))
                stats[cls] = (n + 1, sw + w, sh + h)
    model = {
        "commit": commit,
        "frames": frames,
        "bytes": nbytes,
        "classes": {c: {"boxes": n, "mean_w": round(sw / n, 4), "mean_h": round(sh / n, 4)}
                    for c, (n, sw, sh) in sorted(stats.items())},
    }
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.json.tmp"
    tmp.write_text(json.dumps(model, indent=1) + "\n")
    tmp.rename(out / "model.json")
    print(f"train.py: trained on {commit[:12]}: {frames} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
