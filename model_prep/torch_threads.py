"""torch's CPU thread count, set with MKL's vector maths initialised on one thread first.

Element-wise float ops such as sqrt, exp and log run on MKL's vector-maths library (VML), split over OpenMP
threads once large enough (a 4096-element tensor in two halves). oneMKL 2024.2, which torch's wheels bundle,
picks each VML function's kernel on that function's first call, and when that call is split, another thread can
run a low-accuracy kernel on its part (pytorch/pytorch#188792; gone from oneMKL 2025.0 on). Measured here with
torch 2.13 on 2 threads: 10 of 115 fresh processes returned sqrt of a 4096-element tensor with relative errors up
to 3e-4 in its second half (exp 2e-7, log 5e-6), every later call in those processes agreeing with the others.
In pre-training the first such call is AdamW's sqrt at the first step: from the same features, initial weights
and gradients, 14 of 30 fresh processes took that step to other weights, and 2 of 13 pre-trainings of the demo's
DS-CNN ended as another model. A small call of each VML function on the calling thread alone, before any split
one, closes the race: 50 of 50 the same (tests/test_torch_threads.py).
"""
import torch

# the element-wise functions ATen hands to VML (aten/src/ATen/cpu/vml.h), each dispatched on its own first call
VML_FUNCTIONS = ("acos", "asin", "atan", "cos", "erf", "erfc", "erfinv", "exp", "log", "log10", "log2", "sin",
                 "sqrt", "tan", "tanh", "trunc")


def set_threads(n: int) -> None:
    """torch.set_num_threads(n), then initialise_vml()."""
    torch.set_num_threads(n)
    initialise_vml()


def initialise_vml() -> None:
    """Each VML function once, in float32 and float64, on 16 elements: too few to split, so on this thread alone."""
    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(0.25, 0.75, 16, dtype=dtype)   # inside every function's domain
        for name in VML_FUNCTIONS:
            getattr(torch, name)(x)
