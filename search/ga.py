"""Multi-objective search of sparse-update schemes with pymoo's NSGA-II, and its baselines beside it.

    space = Space.from_contrib(tflite, table)
    ga = nsga2(space, budget_bytes=256 * 1024, evals=600, seed=0)        # Archive
    so = single_ga(space, budget_bytes=256 * 1024, evals=600, seed=0)    # one objective, as Lin et al.
    rs = random_search(space, budget_bytes=256 * 1024, evals=600, seed=0)  # sampler="sparse": GA's random draws
    greedy(space, budget_bytes=256 * 1024)                                  # the knapsack heuristic alone
    ga.hv_curve(reference)                                                  # hypervolume after each evaluation
    ga.best()                                                               # the genome of highest predicted gain

Objectives, all minimized: -gain (predicted accuracy gain), SRAM (the runtime's planner), MACs per
training step. A candidate over the SRAM budget is repaired, not discarded (BudgetRepair: lower, one
step at a time, the weight gene or the bias count whose step buys the least predicted gain, until the
planner says it fits), so both searches spend every evaluation on feasible schemes; an
evaluation is one genome whose objectives were computed. Operators fit the integer genome: the
initial population (init="greedy") a quarter from the greedy knapsack path within the budget
(Space.greedy_path: one gene change at a time, the best predicted gain per byte that still fits; evenly
spaced from the classifier alone to the path's end), the rest drawn by Space.random_sparse (a density
uniform in [0, 1], then each gene on with that probability: schemes of every size, where uniform genes
give mostly half-full ones; init="sparse": all of it); two-point crossover, polynomial mutation rounded
to integers; duplicates are eliminated. The seeds are evaluations like any other (counted, archived):
NSGA-II spreads its population over memory and compute, so few members work the front's top end, the
best scheme under the budget, which the greedy path reaches at once. Random search draws uniform
genomes (Space.random; sampler="sparse": the GA's random draws) through the same repair.
single_ga is the search of Lin et al. (2022): one objective, the predicted gain, under the SRAM
budget as a constraint; pymoo's GA with the same sampling, operators and repair as NSGA-II. Every
search records all three objectives of each evaluation in its Archive.
"""
from dataclasses import dataclass, field

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.indicators.hv import HV
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.optimize import minimize

INITS = ("greedy", "sparse")   # the GAs' initial population: a quarter from Space.greedy_path, or random alone


@dataclass
class Archive:
    """Every evaluation of a search, in order: genomes and objectives (-gain, SRAM bytes, MACs)."""
    x: list = field(default_factory=list)
    f: list = field(default_factory=list)

    def add(self, x, f):
        self.x.append(np.asarray(x, int).copy())
        self.f.append(np.asarray(f, float).copy())

    def __len__(self):
        return len(self.x)

    def hv_curve(self, ref, scale, every=1):
        """Hypervolume of the first n evaluations (n = every, 2 every, ...), objectives divided by `scale`."""
        hv, F = HV(ref_point=np.asarray(ref, float)), np.asarray(self.f) / scale
        ns = list(range(every, len(F) + 1, every))
        return ns, [float(hv(F[:n])) if n else 0.0 for n in ns]

    def best(self, budget_bytes=None):
        """The genome of highest predicted gain (within the budget), fewest bytes on ties."""
        F = np.asarray(self.f)
        ok = np.ones(len(F), bool) if budget_bytes is None else F[:, 1] <= budget_bytes
        if not ok.any():
            return None
        i = min(np.flatnonzero(ok), key=lambda i: (F[i, 0], F[i, 1]))
        return self.x[i]

    def front(self):
        """Indices of the non-dominated evaluations."""
        F = np.asarray(self.f)
        dominated = lambda i: any((F[j] <= F[i]).all() and (F[j] < F[i]).any() for j in range(len(F)))   # noqa: E731
        return [i for i in range(len(F)) if not dominated(i)]

    def top_of_front(self, budget_bytes, k):
        """Indices of the k front members of highest predicted gain within the budget (what is verified)."""
        inside = [i for i in self.front() if self.f[i][1] <= budget_bytes]
        return sorted(inside, key=lambda i: self.f[i][0])[:k]


class BudgetRepair(Repair):
    """Lowers genes until the scheme fits the SRAM budget (the planner's bytes)."""

    def __init__(self, space, budget_bytes):
        super().__init__()
        self.space, self.budget = space, budget_bytes

    def fix(self, x):
        """The first prefix of the greedy decrements (each gives up the step that buys the least predicted
        gain; the gains add up, so the order needs no planner) that fits, found by bisection over the
        planner's bytes: log2(steps) plans instead of one per step."""
        x = np.asarray(x, int).copy()
        s = self.space
        if s.sram(x) <= self.budget:
            return x
        genes, steps, y = range(1 + len(s.layers)), [x.copy()], x.copy()
        while y[:len(genes)].any():
            _, i = min((s.step_gain(y, i), i) for i in genes if y[i] > 0)
            y[i] -= 1
            steps.append(y.copy())
        lo, hi = 0, len(steps) - 1          # steps[lo] does not fit; steps[hi] fits or is the floor
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if s.sram(steps[mid]) <= self.budget else (mid, hi)
        return steps[hi]

    def _do(self, problem, X, **kwargs):
        return np.array([self.fix(x) for x in np.asarray(X, int)])


class SparseSampling(Sampling):
    """pymoo sampling through Space.random_sparse."""

    def __init__(self, space):
        super().__init__()
        self.space = space

    def _do(self, problem, n_samples, random_state=None, **kwargs):
        rng = random_state if random_state is not None else np.random.default_rng()
        return np.array([self.space.random_sparse(rng) for _ in range(n_samples)])


class GreedySampling(SparseSampling):
    """A quarter of the initial population from the greedy path within the budget (greedy_seeds: evenly spaced
    from the classifier alone to the path's end); the rest drawn by Space.random_sparse."""

    def __init__(self, space, budget_bytes):
        super().__init__(space)
        self.budget = budget_bytes

    def _do(self, problem, n_samples, random_state=None, **kwargs):
        return np.array(greedy_seeds(self.space, self.budget, n_samples // 4)
                        + list(super()._do(problem, n_samples - n_samples // 4, random_state)))


def greedy_seeds(space, budget_bytes, n):
    """Up to n schemes of the greedy path within the budget (Space.greedy_path; with several selection rules,
    the path whose end has the highest predicted gain), evenly spaced from the classifier alone, the path's
    end last (the knapsack heuristic's pick)."""
    path = max((space.greedy_path(budget_bytes, rule) for rule in range(len(space.selects))),
               key=lambda p: space.gain(p[-1]))
    return [path[i] for i in np.unique(np.linspace(len(path) - 1, 0, min(n, len(path))).round().astype(int))]


def greedy(space, budget_bytes):
    """The knapsack heuristic's scheme: the greedy path's last that fits the budget (the GAs' top seed)."""
    return greedy_seeds(space, budget_bytes, 1)[-1]


class SchemeProblem(Problem):
    """The search's problem: objectives (-gain, SRAM, MACs), or -gain alone (`single`); SRAM <= budget."""

    def __init__(self, space, budget_bytes, archive, single=False):
        super().__init__(n_var=space.n_var, n_obj=1 if single else 3, n_ieq_constr=1, xl=0, xu=space.upper,
                         vtype=int)
        self.space, self.budget, self.archive, self.single = space, budget_bytes, archive, single

    def _evaluate(self, X, out, *args, **kwargs):
        F, G = [], []
        for x in np.asarray(X, int):
            f = (-self.space.gain(x), *self.space.cost(x))
            self.archive.add(x, f)
            F.append(f)
            G.append(f[1] - self.budget)
        F = np.array(F, float)
        out["F"], out["G"] = F[:, :1] if self.single else F, np.array(G, float)[:, None]


def _evolve(algorithm, space, budget_bytes, evals, seed, single=False, init="greedy"):
    """Run a pymoo algorithm with the genome's operators for `evals` evaluations; the Archive of them all."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    archive = Archive()
    sampling = GreedySampling(space, budget_bytes) if init == "greedy" else SparseSampling(space)
    operators = dict(sampling=sampling, crossover=TwoPointCrossover(prob=0.9),
                     mutation=PM(prob=1.0, eta=5, vtype=float, repair=RoundingRepair()),
                     repair=BudgetRepair(space, budget_bytes), eliminate_duplicates=True)
    minimize(SchemeProblem(space, budget_bytes, archive, single), algorithm(**operators), ("n_evals", evals),
             seed=seed, verbose=False)
    archive.x, archive.f = archive.x[:evals], archive.f[:evals]
    return archive


def nsga2(space, budget_bytes, evals, seed=0, pop_size=24, init="greedy"):
    """NSGA-II for `evals` evaluations; returns the Archive of every evaluation. init: the initial population
    (INITS: "greedy", a quarter from the greedy path; "sparse", Space.random_sparse alone)."""
    return _evolve(lambda **ops: NSGA2(pop_size=pop_size, **ops), space, budget_bytes, evals, seed, init=init)


def single_ga(space, budget_bytes, evals, seed=0, pop_size=24, init="greedy"):
    """A single-objective GA (the predicted gain; the budget a constraint), as Lin et al.; the Archive."""
    return _evolve(lambda **ops: GA(pop_size=pop_size, **ops), space, budget_bytes, evals, seed, single=True,
                   init=init)


def random_search(space, budget_bytes, evals, seed=0, sampler="uniform"):
    """`evals` random genomes (uniform genes, or sampler="sparse": Space.random_sparse), repaired into the
    budget like the GA's; the Archive."""
    if sampler not in ("uniform", "sparse"):
        raise ValueError(f"random_search: sampler must be uniform or sparse, not {sampler!r}")
    draw = space.random if sampler == "uniform" else space.random_sparse
    rng, repair, archive = np.random.default_rng(seed), BudgetRepair(space, budget_bytes), Archive()
    for _ in range(evals):
        x = repair.fix(draw(rng))
        archive.add(x, (-space.gain(x), *space.cost(x)))
    return archive
