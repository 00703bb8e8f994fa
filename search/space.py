"""The search space of sparse-update schemes: an integer genome, what it trains, and what it costs.

    space = Space.from_contrib(tflite, contrib.load("results/contrib-dscnn-kws.json"))
    x = space.random(rng)                      # int genome
    space.scheme(x)                            # the odt-scheme/1 it means
    space.gain(x), space.sram(x), space.macs(x)

Genome (Lin et al. 2022): x[0] indexes how many trailing biases are updated (0 or one of the k the
contribution analysis measured); x[1 + i] indexes candidate layer i's weight-update ratio (0, then
the analysis's ratios, e.g. 1/8, 1/4, 1/2, 1; channels by weight magnitude, as measured). The
classifier (weights and bias) is always trained.
Objectives: the accuracy gain predicted by the contribution table, additively (Δacc_b[k] +
Σ Δacc_W(i, r)); the SRAM the device will use, from the runtime's own planner
(model_prep.training_plan: what `bake plan` prints and plan_vs_measured confirms on qemu-m7);
the MACs of one training step. Memory and MACs are cached per genome.
"""
from dataclasses import dataclass, field

import numpy as np

from model_prep import scheme as fmt
from model_prep.simulate import Simulator
from model_prep.training_plan import TrainingPlan


@dataclass
class Space:
    sim: Simulator
    model: str
    classifier: str
    body: list                       # trainable layers before the classifier, in execution order
    ks: list                         # bias counts the genome can choose (0 first)
    bias_gain: dict                  # k -> Δacc_b[k]
    layers: list                     # candidate layers for weight updates
    ratios: list                     # 0 first
    weight_gain: dict                # (layer, ratio) -> Δacc_W
    _cost: dict = field(default_factory=dict)

    @classmethod
    def from_contrib(cls, tflite_or_sim, table):
        """The space of a model (.tflite or Simulator) with the gains of an odt-contrib/1 table (search.contrib.load)."""
        sim = tflite_or_sim if isinstance(tflite_or_sim, Simulator) else Simulator.from_tflite(tflite_or_sim)
        names = list(fmt.trainable_layers(sim.graph))
        missing = ({w["layer"] for w in table["weight"]} | {n for b in table["bias"] for n in b["layers"]}) - set(names)
        if missing:
            raise ValueError(f"the contribution table ({table['model']}) names layers the model lacks: "
                             f"{', '.join(sorted(missing))}")
        layers = list(dict.fromkeys(w["layer"] for w in table["weight"]))
        ratios = [0.0] + sorted({float(w["ratio"]) for w in table["weight"]})
        return cls(sim, table["model"], names[-1], names[:-1], [0] + [b["k"] for b in table["bias"]],
                   {0: 0.0, **{b["k"]: b["delta"] for b in table["bias"]}}, layers, ratios,
                   {(w["layer"], float(w["ratio"])): w["delta"] for w in table["weight"]})

    # -- the genome ---------------------------------------------------------------------------

    @property
    def n_var(self):
        return 1 + len(self.layers)

    @property
    def upper(self):
        return np.array([len(self.ks) - 1] + [len(self.ratios) - 1] * len(self.layers))

    def random(self, rng):
        return rng.integers(0, self.upper + 1)

    def scheme(self, x, name="search"):
        x = np.asarray(x, int)
        k = self.ks[x[0]]
        biased = self.body[len(self.body) - k:] if k else []
        weights = {n: self.ratios[r] for n, r in zip(self.layers, x[1:]) if r}
        layers = [{"layer": self.classifier, "bias": True, "weight": {"kind": "full"}}]
        for n in self.body:
            if n in biased or n in weights:
                u = {"layer": n, "bias": n in biased}
                if n in weights:
                    u["weight"] = ({"kind": "full"} if weights[n] == 1 else
                                   {"kind": "channels", "ratio": weights[n], "select": "magnitude"})
                layers.append(u)
        return fmt.from_dict({"format": fmt.FORMAT, "model": self.model, "name": name, "layers": layers})

    def describe(self, x):
        x = np.asarray(x, int)
        parts = [f"{self.ks[x[0]]} biases"] + [f"{n}@{self.ratios[r]:g}" for n, r in zip(self.layers, x[1:]) if r]
        return ", ".join(parts)

    # -- the objectives ------------------------------------------------------------------------

    def gain(self, x):
        """Predicted accuracy gain over the classifier alone (additive contributions)."""
        x = np.asarray(x, int)
        return self.bias_gain[self.ks[x[0]]] + sum(self.weight_gain[(n, self.ratios[r])]
                                                   for n, r in zip(self.layers, x[1:]) if r)

    def cost(self, x):
        """(SRAM bytes from the runtime's planner, MACs of a training step), cached."""
        key = tuple(int(v) for v in x)
        if key not in self._cost:
            plan = TrainingPlan(self.sim, self.scheme(x))
            self._cost[key] = (plan.sram_bytes(), plan.trainer.step_macs())
        return self._cost[key]

    def sram(self, x):
        return self.cost(x)[0]

    def macs(self, x):
        return self.cost(x)[1]
