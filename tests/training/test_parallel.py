"""The loop's share of a step between workers: which micro-batches a worker takes, gradient buckets, seeds,
and two gloo processes against one on a model whose every weight can be compared."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from bench.training.loop import OptimConfig, make_accelerator, train
from bench.training.parallel import (SINGLE, Parallel, _buckets, free_port, join_group, leave_group, micro_batch_seed,
                                     shard)


def test_workers_take_every_micro_batch_once():
    for world in (1, 2, 3):
        owners = [[r for r in range(world) if Parallel(r, world, "ddp").takes(k)] for k in range(7)]
        assert all(len(o) == 1 for o in owners)
        assert [o[0] for o in owners] == [k % world for k in range(7)]


def test_buckets_keep_order_and_split_by_size_and_dtype():
    ts = [torch.zeros(4), torch.zeros(4), torch.zeros(4, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
    groups = _buckets(ts, limit_bytes=40)  # 16 + 16 bytes fit; a float64 starts its own; 32 + 16 do not fit
    assert [len(g) for g in groups] == [2, 1, 1]
    assert all(a is b for a, b in zip([t for g in groups for t in g], ts))


def test_micro_batch_seeds_depend_on_seed_step_and_micro_batch_only():
    seeds = {micro_batch_seed(s, step, k) for s in range(3) for step in range(5) for k in range(4)}
    assert len(seeds) == 60


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))


def _batches():
    g = torch.Generator().manual_seed(1)
    while True:
        x = torch.randn(5, 3, generator=g)
        yield {"x": x, "y": x.sum(1, keepdim=True), "attention_mask": torch.ones(5, 2)}


def _loss(model, batch, step):
    loss = ((model(batch["x"]) - batch["y"]) ** 2).mean()
    return loss, {"mse": float(loss.detach())}


CFG = OptimConfig(steps=3, lr=0.05, grad_accum_steps=4)


def _train(parallel: Parallel):
    model = _model()
    if parallel.sharding == "fsdp":
        shard(model)
    result = train(model, _loss, _batches(), CFG, make_accelerator(), parallel=parallel, seed=7)
    full = [p.full_tensor() if hasattr(p, "full_tensor") else p for p in model.parameters()]  # fsdp: gather shards
    return [p.detach().clone() for p in full], result


def _worker(rank: int, address: str, sharding: str, out):
    torch.set_num_threads(1)
    parallel = Parallel(rank, 2, sharding)
    join_group(parallel, address)
    try:
        weights, result = _train(parallel)
    finally:
        leave_group()
    if rank == 0:
        out.put(([w.numpy() for w in weights], result.losses, result.tokens, result.last_parts))


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_gloo_processes_train_as_one_does(sharding):
    """4 micro-batches a step over 2 workers, dropout on: the same losses, tokens and weights (float32 sums of
    the same gradients in another order and grouping: 1e-6 relative)."""
    weights, result = _train(SINGLE)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    address = f"127.0.0.1:{free_port()}"
    procs = [ctx.Process(target=_worker, args=(r, address, sharding, out)) for r in range(2)]
    for p in procs:
        p.start()
    got_weights, losses, tokens, parts = out.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert tokens == result.tokens == 3 * 4 * 10
    assert torch.allclose(torch.tensor(losses), torch.tensor(result.losses), rtol=1e-6, atol=0)
    assert parts.keys() == result.last_parts.keys()
    for mine, theirs in zip(weights, got_weights):
        assert torch.allclose(mine, torch.from_numpy(theirs), rtol=1e-6, atol=1e-7)
    # and the dropout draws matter: another seed gives other weights
    other = train(_model(), _loss, _batches(), CFG, make_accelerator(), seed=8)
    assert other.losses != result.losses
