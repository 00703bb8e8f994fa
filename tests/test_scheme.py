"""The scheme format: JSON round trip, validation against a model, channel selection, `show`."""
import json
import subprocess

import numpy as np
import pytest

from model_prep import scheme as fmt
from model_prep.tflite_graph import load_graph

from conftest import PY, ROOT

SPARSE = {"format": fmt.FORMAT, "model": "dscnn", "name": "sparse", "layers": [
    {"layer": "classifier", "bias": True, "weight": {"kind": "full"}},
    {"layer": "blocks.3.pw", "bias": True, "weight": {"kind": "channels", "ratio": 0.25}},
    {"layer": "blocks.3.dw", "bias": False, "weight": {"kind": "subtensor", "groups": [0, 3], "group_size": 8,
                                                       "rows": [1]}},
    {"layer": "blocks.2.pw", "bias": True}]}


def test_json_round_trip_keeps_every_field(tmp_path):
    s = fmt.from_dict(SPARSE)
    s.save(tmp_path / "s.json")
    again = fmt.load(tmp_path / "s.json")
    assert again == s and json.loads((tmp_path / "s.json").read_text())["format"] == "odt-scheme/1"
    assert again.layers[2].weight.groups == (0, 3) and again.layers[3].weight.kind == "none"


@pytest.mark.parametrize("change,says", [
    (lambda d: d.update(format="other"), "not a scheme"),
    (lambda d: d["layers"][1]["weight"].update(ratio=0.3), "ratio 0.3"),
    (lambda d: d["layers"][1]["weight"].update(kind="half"), "weight kind 'half'"),
    (lambda d: d["layers"][0].update(lr=1), "unknown key(s) lr"),
    (lambda d: d["layers"].append(dict(d["layers"][0])), "listed twice"),
    (lambda d: d["layers"][2]["weight"].pop("group_size"), "group_size"),
    (lambda d: d.update(layers={"classifier": {"bias": True}}), '"layers" is dict; expected a list'),
    (lambda d: d["layers"].__setitem__(0, "classifier"), "layers[0]: expected an object"),
    (lambda d: d["layers"][0].update(weight="full"), "layers[0].weight: expected an object"),
    (lambda d: d["layers"][0].update(bias="yes"), '"bias" is "yes"; expected true or false'),
    (lambda d: d["layers"][0].update(layer=3), '"layer" is 3; expected a string'),
    (lambda d: d["layers"][1]["weight"].update(ratio="1/4"), '"ratio" is "1/4"; expected a number'),
    (lambda d: d["layers"][2]["weight"].update(groups=0), '"groups" is 0; expected a list'),
    (lambda d: d["layers"][2]["weight"].update(rows=[-1]), '"rows" is [-1]; expected a list of indices >= 0'),
    (lambda d: d["layers"][2]["weight"].update(group_size=0), '"group_size" is 0; expected an integer >= 1'),
    (lambda d: d.pop("model"), 'missing "model"'),
    (lambda d: d.update(name=None), '"name" is null'),
])
def test_malformed_schemes_get_one_clear_error(change, says):
    d = json.loads(json.dumps(SPARSE))
    change(d)
    with pytest.raises(fmt.SchemeError, match=None) as e:
        fmt.from_dict(d)
    assert says in str(e.value)


def test_validation_against_the_model(kws):
    g = load_graph(kws.tflite)
    fmt.validate(fmt.from_dict(SPARSE), g)
    unknown = json.loads(json.dumps(SPARSE))
    unknown["layers"][0]["layer"] = "blocks.9.pw"
    with pytest.raises(fmt.SchemeError, match="no trainable layer 'blocks.9.pw'.*blocks.3.pw"):
        fmt.validate(fmt.from_dict(unknown), g)
    outside = json.loads(json.dumps(SPARSE))
    outside["layers"][1]["weight"] = {"kind": "channels", "channels": [1, 64]}
    with pytest.raises(fmt.SchemeError, match="has 64 channels"):
        fmt.validate(fmt.from_dict(outside), g)


def test_magnitude_selection_keeps_the_largest_channels():
    w = np.zeros((4, 1, 1, 8), np.int8)
    w[..., 5], w[..., 2] = 100, 50
    u = fmt.LayerUpdate("x", weight=fmt.WeightUpdate("channels", ratio=0.25))
    assert fmt.selected_channels(u, w).tolist() == [2, 5]
    assert len(fmt.selected_channels(fmt.LayerUpdate("x", weight=fmt.WeightUpdate("channels", ratio=0.5,
                                                                                   select="random")), w)) == 4


def test_show_prints_memory_and_compute(kws, tmp_path):
    fmt.from_dict(SPARSE).save(tmp_path / "s.json")
    r = subprocess.run([PY, "-m", "search.scheme", "show", tmp_path / "s.json", "--model", kws.tflite],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    row = next(line.split() for line in r.stdout.splitlines() if line.startswith("classifier"))
    assert row[-4:] == ["768", "48", "64", "768"]     # 12x64 int8 weights, 12 int32 biases, 64 saved inputs
    pw = next(line.split() for line in r.stdout.splitlines() if line.startswith("blocks.3.pw"))
    assert pw[-4:] == [str(16 * 64), "256", str(25 * 5 * 16), str(25 * 5 * 16 * 64)]
    total = next(line for line in r.stdout.splitlines() if line.startswith("training SRAM"))
    extras = 768 + 48 + 64 + 16 * 64 + 256 + 25 * 5 * 16
    assert int(total.split(": ")[1].split()[0]) > extras    # the arena and gradient buffers come on top
    device = next(line for line in r.stdout.splitlines() if line.startswith("device SRAM"))
    plan = subprocess.run([PY, "-m", "model_prep.bake", "plan", kws.tflite, tmp_path / "s.json", "--json"],
                          cwd=ROOT, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr     # the device's figure is the runtime planner's, as bake plan's
    assert int(device.split(": ")[1].split()[0]) == json.loads(plan.stdout)["total_sram_bytes"]
    bad = subprocess.run([PY, "-m", "search.scheme", "show", tmp_path / "missing.json", "--model", kws.tflite],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "no such scheme file" in bad.stderr and "Traceback" not in bad.stderr
