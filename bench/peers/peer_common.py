"""What the Python peers (torch_hogwild.py, sklearn_sgd.py) share: the command
line, the data loaders, the MLP's initial weights and the JSON report.

The workloads are those of hand_sgd.cpp (see its header). Run the peers with
the interpreter that has Debian's python3-torch / python3-sklearn:
/usr/bin/python3.
"""

import argparse
import gzip
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATA_DIR = os.path.join(HERE, "..", "data")
W3_FEATURES = 47236
HIDDEN = 128
CLASSES = 10


def default_lr(workload, batch):
    """Learning rates that reach the target accuracy in 5 epochs (as hand_sgd.cpp; see README.md)."""
    if workload == "W1":
        return 0.005 if batch == 1 else 0.1
    if workload == "W2":
        return 0.01 if batch == 1 else 0.1
    return 1.0 if batch == 1 else 8.0


def parse_args(peer):
    p = argparse.ArgumentParser(prog=peer)
    p.add_argument("--workload", choices=["W1", "W2", "W3"], default="W1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--rows", type=int, default=-1, help="first N training rows (quick runs)")
    p.add_argument("--fmnist", default=FMNIST_DIR)
    p.add_argument("--data", default=DATA_DIR)
    o = p.parse_args()
    if o.threads < 1 or o.epochs < 1 or o.batch < 1:
        p.error("--threads, --epochs and --batch must be >= 1")
    if o.lr is None:
        o.lr = default_lr(o.workload, o.batch)
    return o


def _idx(images, labels):
    with gzip.open(images, "rb") as f:
        im = f.read()
    with gzip.open(labels, "rb") as f:
        lb = f.read()
    if int.from_bytes(im[:4], "big") != 0x803 or int.from_bytes(lb[:4], "big") != 0x801:
        raise ValueError(f"not IDX: {images}")
    rows = int.from_bytes(im[4:8], "big")
    cols = int.from_bytes(im[8:12], "big") * int.from_bytes(im[12:16], "big")
    x = np.frombuffer(im, dtype=np.uint8, offset=16).reshape(rows, cols).astype(np.float32) / np.float32(255)
    y = np.frombuffer(lb, dtype=np.uint8, offset=8).astype(np.int64)
    return x, y


def load_fashion(o):
    """((x_train float32 [n,784] in [0,1], y_train int64), (x_test, y_test)), training rows limited by --rows."""
    d = o.fmnist
    xtr, ytr = _idx(os.path.join(d, "train-images-idx3-ubyte.gz"), os.path.join(d, "train-labels-idx1-ubyte.gz"))
    xte, yte = _idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"), os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    if o.rows >= 0:
        xtr, ytr = xtr[: o.rows], ytr[: o.rows]
    return (xtr, ytr), (xte, yte)


def load_w3(o, dtype=np.float32):
    """((X_train CSR, y_train ±1), (X_test, y_test)) from bench/data/w3-*.svm (sklearn's LIBSVM reader)."""
    from sklearn.datasets import load_svmlight_file

    out = []
    for name in ("w3-train.svm", "w3-test.svm"):
        path = os.path.join(o.data, name)
        if not os.path.exists(path):
            sys.exit(f"{path} is missing (run: node bench/peers/make-w3.js)")
        x, y = load_svmlight_file(path, n_features=W3_FEATURES, dtype=dtype, zero_based=False)
        out.append((x, np.where(y > 0, 1.0, -1.0).astype(dtype)))
    (xtr, ytr), test = out
    if o.rows >= 0:
        xtr, ytr = xtr[: o.rows], ytr[: o.rows]
    return (xtr, ytr), test


def _rng_uint32(seed, n):
    """The first n outputs of the peers' shared generator (see hand_sgd.cpp: a Weyl sequence through murmur3's finaliser)."""
    with np.errstate(over="ignore"):
        z = np.uint32(seed) + np.arange(1, n + 1, dtype=np.uint32) * np.uint32(0x9E3779B9)
        z = (z ^ (z >> np.uint32(16))) * np.uint32(0x85EBCA6B)
        z = (z ^ (z >> np.uint32(13))) * np.uint32(0xC2B2AE35)
        return z ^ (z >> np.uint32(16))


def mlp_init(seed, features):
    """W1 [features,128], W2 [128,10]: Glorot-uniform, the same float32 values as hand_sgd.cpp and the JS peers."""
    sizes = [(features, HIDDEN), (HIDDEN, CLASSES)]
    u = (_rng_uint32(seed, sum(a * b for a, b in sizes)) >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
    out, at = [], 0
    for fan_in, fan_out in sizes:
        limit = np.sqrt(np.float32(6) / np.float32(fan_in + fan_out), dtype=np.float32)
        n = fan_in * fan_out
        out.append(((np.float32(2) * u[at : at + n] - np.float32(1)) * limit).reshape(fan_in, fan_out))
        at += n
    return out


def torch_mlp(seed, features):
    """The W2 MLP as a torch module (Linear - ReLU - Linear) with mlp_init's weights and zero biases (torch imported here: the sklearn peer has none)."""
    import torch
    import torch.nn as nn

    w1, w2 = mlp_init(seed, features)
    m = nn.Sequential(nn.Linear(features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))
    with torch.no_grad():
        m[0].weight.copy_(torch.from_numpy(w1.T))  # nn.Linear keeps [out, in]
        m[2].weight.copy_(torch.from_numpy(w2.T))
        m[0].bias.zero_()
        m[2].bias.zero_()
    return m


def report(peer, o, train_rows, seconds, accuracy, loss, **extra):
    samples = train_rows * o.epochs
    line = {
        "peer": peer,
        "workload": o.workload,
        "threads": o.threads,
        "batch": o.batch,
        "epochs": o.epochs,
        "lr": o.lr,
        "trainRows": int(train_rows),
        "samples": int(samples),
        "seconds": round(seconds, 6),
        "samplesPerSec": round(samples / seconds, 1),
        "testAccuracy": round(float(accuracy), 6),
        "testLoss": round(float(loss), 6),
        **extra,
    }
    print(json.dumps(line), flush=True)
