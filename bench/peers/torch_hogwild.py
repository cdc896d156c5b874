#!/usr/bin/python3
"""Peer: PyTorch Hogwild, the standard recipe: the model's parameters in shared
memory (model.share_memory()), N processes (torch.multiprocessing, fork), each
with torch.set_num_threads(1) and its own torch.optim.SGD (plain: no momentum,
no weight decay) stepping the shared parameters without locks. Each epoch every
process draws the same permutation (torch.randperm, seeded by seed + epoch) and
trains on its disjoint contiguous share; a barrier separates epochs.

  W1  nn.Linear(784, 10), zeros init, cross-entropy (mean over the batch)
  W2  Linear(784,128) - ReLU - Linear(128,10), the peers' shared Glorot-uniform init, zero biases
  W3  sparse input: nn.EmbeddingBag(47236, 1, mode='sum', sparse=True) with
      per_sample_weights = the row's values is exactly x·w over the nonzeros,
      and its gradient is sparse, so SGD touches only the features of the
      batch (a dense nn.Linear on a sparse tensor would step all 47,236 weights
      every batch). Each process gathers its share of the epoch into CSR order
      once per epoch (numpy, counted in the time), so a batch is a contiguous
      slice. Loss: soft_margin_loss = mean log(1 + exp(-y z)).

The clock runs from the moment all processes are started and waiting at a
barrier until the last one is joined; loading and process start are excluded.

Usage: /usr/bin/python3 bench/peers/torch_hogwild.py --workload W1|W2|W3 --threads N
       --epochs 5 --batch 1 --lr 0.005 [--seed S] [--rows N] [--fmnist DIR] [--data DIR]
Prints one JSON line on stdout.
"""

import sys
import time

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ beside the peers
import peer_common as pc  # noqa: E402

PEER = "torch_hogwild"


class SparseLogistic(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.w = nn.EmbeddingBag(features, 1, mode="sum", sparse=True)
        nn.init.zeros_(self.w.weight)
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, indices, offsets, values):
        return self.w(indices, offsets, per_sample_weights=values).squeeze(1) + self.b


def make_model(o, features):
    if o.workload == "W3":
        return SparseLogistic(features)
    if o.workload == "W1":
        m = nn.Linear(features, pc.CLASSES)
        nn.init.zeros_(m.weight)
        nn.init.zeros_(m.bias)
        return m
    return pc.torch_mlp(o.seed, features)


def share_of(n, rank, threads):
    return n * rank // threads, n * (rank + 1) // threads


def epoch_perm(o, n, epoch):
    g = torch.Generator().manual_seed(o.seed * 1000 + epoch)
    return torch.randperm(n, generator=g)


def train_dense(rank, o, model, x, y, start, epoch_barrier):
    torch.set_num_threads(1)
    opt = torch.optim.SGD(model.parameters(), lr=o.lr)
    lo, hi = share_of(x.shape[0], rank, o.threads)
    start.wait()
    for e in range(o.epochs):
        epoch_barrier.wait()
        mine = epoch_perm(o, x.shape[0], e)[lo:hi]
        for b in range(0, hi - lo, o.batch):
            idx = mine[b : b + o.batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()


def train_sparse(rank, o, model, indptr, indices, values, y, start, epoch_barrier):
    torch.set_num_threads(1)
    opt = torch.optim.SGD(model.parameters(), lr=o.lr)
    n = len(indptr) - 1
    lo, hi = share_of(n, rank, o.threads)
    start.wait()
    for e in range(o.epochs):
        epoch_barrier.wait()
        rows = epoch_perm(o, n, e)[lo:hi].numpy()
        # This share's rows in epoch order, as one CSR: positions of every nonzero.
        lengths = indptr[rows + 1] - indptr[rows]
        ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        pos = np.repeat(indptr[rows] - ptr[:-1], lengths) + np.arange(ptr[-1])
        ind_t = torch.from_numpy(indices[pos])
        val_t = torch.from_numpy(values[pos])
        ptr_t = torch.from_numpy(ptr)
        y_t = torch.from_numpy(y[rows])
        for b in range(0, len(rows), o.batch):
            b1 = min(b + o.batch, len(rows))
            p0, p1 = int(ptr[b]), int(ptr[b1])
            offsets = ptr_t[b:b1] - p0
            opt.zero_grad(set_to_none=True)
            z = model(ind_t[p0:p1], offsets, val_t[p0:p1])
            F.soft_margin_loss(z, y_t[b:b1]).backward()
            opt.step()


def main():
    o = pc.parse_args(PEER)
    torch.set_num_threads(1)  # before any fork: no intra-op pool to inherit
    torch.manual_seed(o.seed)
    ctx = mp.get_context("fork")
    start = ctx.Barrier(o.threads + 1)
    epoch_barrier = ctx.Barrier(o.threads)

    if o.workload == "W3":
        (xtr, ytr), (xte, yte) = pc.load_w3(o)
        train_rows, features = xtr.shape
        model = make_model(o, features)
        model.share_memory()
        args = (o, model, xtr.indptr.astype(np.int64), xtr.indices.astype(np.int64), xtr.data, ytr, start, epoch_barrier)
        target = train_sparse
    else:
        (xtr, ytr), (xte, yte) = pc.load_fashion(o)
        train_rows, features = xtr.shape
        model = make_model(o, features)
        model.share_memory()
        args = (o, model, torch.from_numpy(xtr), torch.from_numpy(ytr), start, epoch_barrier)
        target = train_dense

    procs = [ctx.Process(target=target, args=(rank, *args)) for rank in range(o.threads)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - t0
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit(f"{PEER}: a training process failed")

    with torch.no_grad():
        if o.workload == "W3":
            csr = xte.tocsr()
            z = model(
                torch.from_numpy(csr.indices.astype(np.int64)),
                torch.from_numpy(csr.indptr[:-1].astype(np.int64)),
                torch.from_numpy(csr.data),
            )
            yt = torch.from_numpy(yte)
            accuracy = ((z * yt) > 0).double().mean().item()
            loss = F.soft_margin_loss(z.double(), yt.double()).item()
        else:
            logits = model(torch.from_numpy(xte)).double()
            yt = torch.from_numpy(yte)
            accuracy = (logits.argmax(1) == yt).double().mean().item()
            loss = F.cross_entropy(logits, yt).item()
    pc.report(PEER, o, train_rows, seconds, accuracy, loss, torch=torch.__version__)


if __name__ == "__main__":
    main()
