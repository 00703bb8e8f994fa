"""The search space of sparse-update schemes: an integer genome, what it trains, and what it costs.

    space = Space.from_contrib(tflite, contrib.load("results/contrib-dscnn-kws.json"))
    x = space.random(rng)                      # int genome, every gene uniform
    x = space.random_sparse(rng)               # int genome, schemes of every size equally likely
    space.scheme(x)                            # the odt-scheme/1 it means
    space.gain(x), space.sram(x), space.macs(x)

Genome (Lin et al. 2022): x[0] indexes how many trailing biases are updated (0 or one of the k the
contribution analysis measured); x[1 + i] indexes candidate layer i's weight update: none, or one of
the variants the analysis measured for it, cheapest first (a ratio of its channels, 1/8 .. 1, and at
sub-tensor granularity the same restricted to its middle kernel row, `search.contrib --rows middle`);
when the analysis measured several channel-selection rules (`--select magnitude,random,fisher`), a last
gene picks the rule (fisher: the explicit channels the table measured). When the table measured the layers'
own biases (`search.contrib --layer-bias`), a layer's gene also offers its bias alone and each weight variant
with its bias (TinyTrain's schemes: the biases of the layers it updates), each at the gain the table measured
for it; a layer among the k trailing biases has its bias anyway. The classifier (weights and bias) is always
trained.
Objectives: the accuracy gain predicted by the contribution table, additively over the genes (Δacc_b[k] +
Σ Δacc_W(i, r), a layer's own bias measured with its weights); the SRAM the device will use, from the
runtime's own planner (model_prep.training_plan: what `bake plan` prints and plan_vs_measured confirms on qemu-m7);
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
    options: dict                    # layer -> [None, (ratio or 0, rows or None, own bias), ...] cheapest first
    selects: list                    # channel-selection rules measured
    weight_gain: dict                # (layer, ratio, rows, select) -> Δacc_W
    channels: dict = field(default_factory=dict)   # (layer, ratio, rows, select) -> explicit channel indices
    own_bias_gain: dict = field(default_factory=dict)      # layer -> Δ of its own bias alone
    weight_bias_gain: dict = field(default_factory=dict)   # (layer, ratio, rows, select) -> Δ with its own bias
    _cost: dict = field(default_factory=dict)

    @classmethod
    def from_contrib(cls, tflite_or_sim, table):
        """The space of a model (.tflite or Simulator) with the gains of an odt-contrib/1 table
        (search.contrib.load)."""
        sim = tflite_or_sim if isinstance(tflite_or_sim, Simulator) else Simulator.from_tflite(tflite_or_sim)
        names = list(fmt.trainable_layers(sim.graph))
        missing = ({w["layer"] for w in table["weight"]} | {n for b in table["bias"] for n in b["layers"]}) - set(names)
        if missing:
            raise ValueError(f"the contribution table ({table['model']}) names layers the model lacks: "
                             f"{', '.join(sorted(missing))}")
        plain = [w for w in table["weight"] if not w.get("bias")]     # with its own bias: own layers' variants
        layers = list(dict.fromkeys(w["layer"] for w in plain))
        variant = lambda w: (float(w["ratio"]), None if w.get("rows") is None else tuple(w["rows"]))  # noqa: E731
        key = lambda w: (w["layer"], *variant(w), w.get("select", "magnitude"))   # noqa: E731
        own = {e["layer"]: e["delta"] for e in table.get("layer_bias", [])}
        strays = set(own) - set(layers)
        if strays:
            raise ValueError(f"the contribution table measures the own bias of {sorted(strays)[0]}, whose weights it "
                             f"does not measure")
        gain = {key(w): w["delta"] for w in plain}
        with_bias = {key(w): w["delta"] for w in table["weight"] if w.get("bias")}
        channels = {key(w): tuple(w["channels"]) for w in plain if w.get("channels") is not None}
        selects = list(dict.fromkeys(w.get("select", "magnitude") for w in plain))
        options = {}
        for n in layers:
            mine = [w for w in plain if w["layer"] == n and w.get("select", "magnitude") == selects[0]]
            mine = sorted(mine, key=lambda w: (w["memory_bytes"], w["ratio"]))
            flags = (False, True) if n in own else (False,)   # its bias alone first, then each variant
            alone = [(0.0, None, True)] if n in own else []     # without its bias and with it
            options[n] = [None] + alone + [(*variant(w), f) for w in mine for f in flags]
            missing = [(n, *v[:2], sel) + (("with its bias",) if v[2] else ()) for v in options[n][1:] if v[0]
                       for sel in selects if (n, *v[:2], sel) not in (with_bias if v[2] else gain)]
            if missing:
                raise ValueError(f"the contribution table lacks {missing[0]}: every layer needs every variant "
                                 f"with every selection rule")
        return cls(sim, table["model"], names[-1], names[:-1], [0] + [b["k"] for b in table["bias"]],
                   {0: 0.0, **{b["k"]: b["delta"] for b in table["bias"]}}, layers, options, selects, gain, channels,
                   own, with_bias)

    # -- the genome ---------------------------------------------------------------------------

    @property
    def n_var(self):
        return 1 + len(self.layers) + (len(self.selects) > 1)

    @property
    def gene_names(self):
        """What each gene of the genome sets: "biases", each candidate layer's name, and "select" when present."""
        return ["biases"] + list(self.layers) + (["select"] if len(self.selects) > 1 else [])

    @property
    def upper(self):
        select = [len(self.selects) - 1] if len(self.selects) > 1 else []
        return np.array([len(self.ks) - 1] + [len(self.options[n]) - 1 for n in self.layers] + select)

    @property
    def classifier_only(self):
        """The smallest genome: no bias beyond the classifier's, no weights (the classifier alone)."""
        return np.zeros(self.n_var, int)

    def fits(self, budget):
        """Whether any scheme fits `budget` bytes of SRAM: the classifier alone, the smallest, does."""
        return self.sram(self.classifier_only) <= budget

    def _decode(self, x):
        """(k, {layer: (ratio or 0, rows, own bias)} of the layers whose genes are on, selection rule) of a genome."""
        x = np.asarray(x, int)
        genes = x[1:1 + len(self.layers)]
        select = self.selects[x[-1]] if len(self.selects) > 1 else self.selects[0]
        return self.ks[x[0]], {n: self.options[n][g] for n, g in zip(self.layers, genes) if g}, select

    def random(self, rng):
        """Every gene uniform over its values: most genomes switch on about half of the candidates."""
        return rng.integers(0, self.upper + 1)

    def random_sparse(self, rng):
        """A density p drawn uniformly in [0, 1], then each gene on with probability p (uniform over its
        non-zero values): from the classifier alone to every candidate, every scheme size equally likely."""
        up = self.upper
        return np.where(rng.random(len(up)) < rng.random(), rng.integers(1, up + 1), 0)

    def scheme(self, x, name="search"):
        k, weights, select = self._decode(x)
        biased = self._trailing(k)
        layers = [{"layer": self.classifier, "bias": True, "weight": {"kind": "full"}}]
        for n in self.body:
            if n in biased or n in weights:
                ratio, rows, own = weights.get(n, (0.0, None, False))
                u = {"layer": n, "bias": n in biased or own}
                if ratio:
                    chosen = self.channels.get((n, ratio, rows, select))
                    pick = {"ratio": ratio, "select": select} if chosen is None else {"channels": list(chosen)}
                    u["weight"] = {"kind": "full"} if ratio == 1 and rows is None else {
                        "kind": "channels", **pick, **({"rows": list(rows)} if rows else {})}
                layers.append(u)
        return fmt.from_dict({"format": fmt.FORMAT, "model": self.model, "name": name, "layers": layers})

    def describe(self, x):
        k, weights, select = self._decode(x)
        parts = [f"{k} biases"] + [(f"{n}@{r:g}" if r else n) + (f" rows {list(rows)}" if rows else "")
                                   + (" +bias" if own else "") for n, (r, rows, own) in weights.items()]
        return ", ".join(parts) + (f" ({select})" if len(self.selects) > 1 else "")

    # -- the objectives ------------------------------------------------------------------------

    def gain(self, x):
        """Predicted accuracy gain over the classifier alone (additive contributions)."""
        k, weights, select = self._decode(x)
        trailing = self._trailing(k)
        return self.bias_gain[k] + sum(self._option_gain(n, v, select, n in trailing) for n, v in weights.items())

    def _trailing(self, k):
        """The last k layers before the classifier, whose biases bias gene k trains."""
        return self.body[len(self.body) - k:]

    def _option_gain(self, n, option, select, biased):
        """Predicted gain of layer n's gene value `option` (None, or (ratio or 0, rows, own bias)); `biased`: its
        bias is among the trailing ones already, so its own adds nothing."""
        if option is None:
            return 0.0
        ratio, rows, own = option
        if own and not biased:
            return self.weight_bias_gain[(n, ratio, rows, select)] if ratio else self.own_bias_gain[n]
        return self.weight_gain[(n, ratio, rows, select)] if ratio else 0.0

    def best_gain(self):
        """The most the table can predict: the best bias count plus each layer's best gene value (an upper bound
        of gain over the genomes; the hypervolume's scale)."""
        best = lambda n: max(max(self._option_gain(n, o, sel, False) for o in self.options[n]  # noqa: E731
                                 for sel in self.selects), 0.0)
        return max(max(self.bias_gain.values()), 0.0) + sum(best(n) for n in self.layers)

    def step_gain(self, x, i):
        """Predicted gain lost by lowering gene i (the bias count or a weight gene) by one: the gains add up,
        so it depends on that gene alone, the selection rule, and where own biases are on, on the trailing ones
        (a layer that leaves them with its own bias on counts at the gain measured with that bias)."""
        k, weights, select = self._decode(x)
        g = int(x[i])
        if i == 0:
            fewer = self.ks[g - 1]
            left = [n for n in self._trailing(k)[:k - fewer] if n in weights]
            value = lambda n, biased: self._option_gain(n, weights[n], select, biased)   # noqa: E731
            change = sum(value(n, True) - value(n, False) for n in left)
            return self.bias_gain[k] - self.bias_gain[fewer] + change
        n = self.layers[i - 1]
        biased = n in self._trailing(k)
        return (self._option_gain(n, self.options[n][g], select, biased)
                - self._option_gain(n, self.options[n][g - 1], select, biased))

    def greedy_path(self, budget, select=0):
        """Genomes from the classifier alone upward, each one gene change past the last, all within `budget`
        bytes: at each step the change of highest predicted gain per byte that still fits (the greedy for the
        knapsack the search solves, gains additive as the table assumes). A change's bytes are what it costs on
        its own: the planner's SRAM of the classifier alone with that gene set, minus the classifier alone's
        (one plan per gene value); the planner's bytes do not quite add up (a peak is a max, not a sum), so they
        order the changes, and the planner itself says whether the changed scheme fits. Ends where no change
        that fits raises the predicted gain. `select`: the index of the channel-selection rule."""
        none = self.classifier_only
        if len(self.selects) > 1:
            none[-1] = select
        genes, base = range(1 + len(self.layers)), self.sram(none)
        extra = {(i, v): self.sram(_with(none, i, v)) - base if v else 0
                 for i in genes for v in range(self.upper[i] + 1)}
        x, path, over = none, [none], set()   # over: changes that did not fit (more genes never fit better)
        while True:
            now = self.gain(x)
            moves = sorted(((self.gain(_with(x, i, v)) - now) / max(extra[i, v] - extra[i, x[i]], 1), i, v)
                           for i in genes for v in range(x[i] + 1, self.upper[i] + 1) if (i, v) not in over)
            for _, i, v in (m for m in reversed(moves) if m[0] > 0):
                if self.sram(_with(x, i, v)) <= budget:
                    x = _with(x, i, v)
                    path.append(x)
                    break
                over.add((i, v))
            else:
                return path

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


def _with(x, i, v):
    """A copy of genome x with gene i set to v."""
    y = np.array(x, int)
    y[i] = v
    return y
