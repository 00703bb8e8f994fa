"""torch_threads.set_threads closes the race in MKL's first vector-maths call (model_prep/torch_threads.py).

The race shows only in a process's first split VML call, so each trial is a fresh interpreter running this file (`-m`):
2 threads, a DS-CNN's forward and backward pass and its first AdamW step (whose sqrt of the 64x64 pointwise
weights is the first split VML call), then the parameters' SHA-256. Every trial must give the same parameters
as the same step in the test's own process, where VML is long initialised. The trials run one after another:
on an idle 2-core machine about 1 in 3 gave other parameters without the fix (several at once hide the race);
12 of them miss that with probability about 1 %.
"""
import hashlib

TRIALS = 12


def first_adamw_step_sha256() -> str:
    import torch
    from model_prep import checkpoint, torch_threads
    threads = torch.get_num_threads()
    torch_threads.set_threads(2)
    try:
        torch.manual_seed(0)
        model = checkpoint.build("dscnn", {"input_hw": (49, 10)}).to(memory_format=torch.channels_last)
        x = torch.randn(100, 1, 49, 10).contiguous(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        torch.nn.functional.cross_entropy(model(x), torch.arange(100) % 12).backward()
        opt.step()
        return hashlib.sha256(torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()).hexdigest()
    finally:
        torch.set_num_threads(threads)


def test_first_adamw_step_in_fresh_processes_matches_a_warm_process():
    from conftest import PY, run   # here, not at the top: the fresh interpreters run this file without conftest
    fresh = [run(PY, "-m", "tests.test_torch_threads").stdout.strip() for _ in range(TRIALS)]
    warm = first_adamw_step_sha256()
    others = [h[:12] for h in fresh if h != warm]
    assert not others, f"{len(others)} of {TRIALS} fresh processes' first AdamW step differs from {warm[:12]}: {others}"


if __name__ == "__main__":
    print(first_adamw_step_sha256())
