"""The classifier's integer SGD: C++ (firmware/runtime/classifier_sgd.cc) == Python twin, and QAS sanity."""
import ctypes

import numpy as np
import pytest

from model_prep import classifier_sgd as sgd

from conftest import runtime_library


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = runtime_library(tmp_path_factory.mktemp("sgd"), "classifier_sgd")
    lib.shim_scaled_step.restype = ctypes.c_int32
    lib.shim_scaled_step.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_uint64, ctypes.c_int32]
    lib.shim_xorshift64.restype = ctypes.c_uint64
    return lib


def test_scaled_step_equals_python_over_all_shift_regimes(lib):
    rng = np.random.default_rng(0)
    for _ in range(20000):
        acc = int(rng.integers(-(1 << 23), 1 << 23))
        m, e = sgd.fixed_multiplier(float(10.0 ** rng.uniform(-14, 3)))
        rand = int(rng.integers(0, 1 << 63)) * 2 + int(rng.integers(0, 2))
        for use_rand in (0, 1):
            expected = sgd.scaled_step(acc, m, e, rand if use_rand else None)
            assert lib.shim_scaled_step(acc, m, e, rand, use_rand) == expected, (acc, m, e, rand, use_rand)


def test_stochastic_rounding_is_unbiased():
    m, e = sgd.fixed_multiplier(0.3)
    state, total = 12345, 0
    for _ in range(4000):
        state, rand = sgd.xorshift64(state)
        total += sgd.scaled_step(-1, m, e, rand)
    assert abs(total / 4000 - 0.3) < 0.03


def test_softmax_gradient_and_rng_equal_python(lib):
    rng = np.random.default_rng(1)
    table = sgd.exp_table(0.07)
    for _ in range(500):
        logits = rng.integers(-128, 128, 12).astype(np.int8)
        label = int(rng.integers(0, 12))
        grad = np.zeros(12, np.int32)
        lib.shim_softmax_grad_q15(logits.ctypes.data_as(ctypes.c_void_p), 12, label,
                                  table.ctypes.data_as(ctypes.c_void_p), grad.ctypes.data_as(ctypes.c_void_p))
        expected = sgd.softmax_grad_q15(logits, label, table)
        assert grad.tolist() == expected
        assert abs(sum(expected)) <= 12          # probabilities sum to one in Q15, up to rounding
    state_c, state_py = ctypes.c_uint64(0x9E3779B97F4A7C15), 0x9E3779B97F4A7C15
    for _ in range(1000):
        state_py, out = sgd.xorshift64(state_py)
        assert lib.shim_xorshift64(ctypes.byref(state_c)) == out


def test_qas_steps_are_larger_than_plain_int8_sgd():
    qas = sgd.training_constants(0.02, -128, [0.004] * 4, 0.1, lr=0.05, qas=True)
    plain = sgd.training_constants(0.02, -128, [0.004] * 4, 0.1, lr=0.05, qas=False)
    acc = 1 << 15  # a gradient of 1.0 times an input step of 1
    assert abs(sgd.scaled_step(acc * 100, qas.w_mult[0], qas.w_exp[0])) >= 1
    assert sgd.scaled_step(acc * 100, plain.w_mult[0], plain.w_exp[0]) == 0
