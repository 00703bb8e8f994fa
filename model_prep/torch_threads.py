"""torch's CPU thread count, set with MKL's vector maths initialised on one thread first.

Element-wise float ops such as sqrt, exp and log run on MKL's vector-maths library (VML), split over OpenMP
threads from 2048 elements on. VML initialises itself on its first call, and when that first call is split,
another thread can start before the initialisation is done and compute its part at low accuracy. Measured with
torch 2.13 and MKL 2024.2 on 2 threads: about 1 fresh process in 8 returned sqrt of a 4096-element tensor with
relative errors up to 3e-4 in its second half (exp 2e-7, log 5e-6), every later call in that process agreeing
with the others. In pre-training the first such call is AdamW's sqrt at the first step, so about one
pre-training in seven gave another model from the same data and seed. One call on the calling thread alone,
before any split one, closes the race (tests/test_torch_threads.py).
"""
import torch


def set_threads(n: int) -> None:
    """torch.set_num_threads(n), then initialise_vml()."""
    torch.set_num_threads(n)
    initialise_vml()


def initialise_vml() -> None:
    """One VML call small enough (below ATen's 2048-element grain) to run on this thread alone."""
    torch.sqrt(torch.ones(16))
