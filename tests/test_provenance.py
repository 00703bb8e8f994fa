"""Where a result came from: the machine record names the CPU, since float pre-training is reproducible only on a
CPU with the same vector extension (the tables keyed by the int8 export's SHA-256 carry over only there)."""
from model_prep.provenance import cpu, run_record

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse sse2 avx avx2 {extra}

processor\t: 1
model name\t: Intel(R) Xeon(R) Processor
"""


def test_cpu_names_the_model_and_the_widest_extension_torch_dispatches_on(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO.format(extra="avx512f avx512bw avx512vl avx512dq avx512_vnni"))
    assert cpu(info) == "Intel(R) Xeon(R) Processor, AVX512"
    info.write_text(CPUINFO.format(extra="avx512f"))   # AVX-512 foundation alone: torch stays on AVX2
    assert cpu(info) == "Intel(R) Xeon(R) Processor, AVX2"
    info.write_text(CPUINFO.format(extra="").replace(" avx2", ""))
    assert cpu(info) == "Intel(R) Xeon(R) Processor"
    assert cpu(tmp_path / "missing") == ""


def test_run_record_carries_the_cpu():
    record = run_record("python -m x", "2 threads")
    assert set(record) == {"commit", "date", "machine", "command"} and record["command"] == "python -m x"
    assert record["machine"].endswith(", 2 threads") and cpu() in record["machine"]
