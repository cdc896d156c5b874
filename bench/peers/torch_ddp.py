#!/usr/bin/python3
"""Peer: PyTorch DistributedDataParallel with the Gloo backend on loopback, the
standard synchronous data-parallel recipe: N processes (torch.multiprocessing,
fork), each torch.set_num_threads(1), each a DDP replica of the W2 MLP with
its own torch.optim.SGD (plain), gradients averaged by allreduce every batch.
Each epoch every process draws the same permutation (seeded by seed + epoch)
and trains on its disjoint contiguous share with batches of --batch rows (the
global batch is N x --batch, as DistributedSampler gives).

  W2  Linear(784,128) - ReLU - Linear(128,10), the peers' shared Glorot-uniform
      init (peer_common.mlp_init), zero biases, cross-entropy

The clock runs from the moment all processes have joined the process group
and wait at a barrier until the last one is joined; loading, process start and
rendezvous are excluded. Rank 0 evaluates on the test set.

Usage: /usr/bin/python3 bench/peers/torch_ddp.py --threads N (processes)
       --epochs 5 --batch 32 --lr 0.1 [--seed S] [--rows N] [--fmnist DIR]
Prints one JSON line on stdout.
"""

import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.dont_write_bytecode = True  # no __pycache__ beside the peers
import peer_common as pc  # noqa: E402

PEER = "torch_ddp"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(rank, o, port, x, y, xte, yte, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=o.threads)
    model = DDP(pc.torch_mlp(o.seed, x.shape[1]))
    opt = torch.optim.SGD(model.parameters(), lr=o.lr)
    n = x.shape[0]
    lo, hi = n * rank // o.threads, n * (rank + 1) // o.threads
    # every replica takes the same number of steps (allreduce needs it): the smallest share's
    steps = (n // o.threads + o.batch - 1) // o.batch
    dist.barrier()
    t0 = time.perf_counter()
    for e in range(o.epochs):
        g = torch.Generator().manual_seed(o.seed * 1000 + e)
        mine = torch.randperm(n, generator=g)[lo:hi]
        for b in range(0, min(hi - lo, steps * o.batch), o.batch):
            idx = mine[b : b + o.batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    dist.barrier()
    seconds = time.perf_counter() - t0
    if rank == 0:
        with torch.no_grad():
            logits = model.module(xte).double()
            out.put((seconds, (logits.argmax(1) == yte).double().mean().item(), F.cross_entropy(logits, yte).item()))
    dist.destroy_process_group()


def main():
    o = pc.parse_args(PEER)
    if o.workload != "W2":
        sys.exit(f"{PEER}: only W2 (the MLP) is measured with DDP")
    torch.set_num_threads(1)
    (xtr, ytr), (xte, yte) = pc.load_fashion(o)
    x, y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    ctx = mp.get_context("fork")
    out = ctx.SimpleQueue()
    port = free_port()
    procs = [ctx.Process(target=run, args=(r, o, port, x, y, torch.from_numpy(xte), torch.from_numpy(yte), out)) for r in range(o.threads)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit(f"{PEER}: a training process failed")
    seconds, accuracy, loss = out.get()
    pc.report(PEER, o, xtr.shape[0], seconds, accuracy, loss, torch=torch.__version__, backend="gloo", processes=o.threads)


if __name__ == "__main__":
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    main()
