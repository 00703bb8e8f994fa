"""Real evaluations of schemes (sparse training on the integer simulator), in parallel through Dask, cached.

    cfg = evaluation_config(task, table)                             # as the contribution table trained
    with Evaluator(task, cfg, scheduler=None, workers=2) as ev:      # a local cluster by default
        acc = ev.accuracy(schemes, split="test")                     # [mean test accuracy per scheme]

Each evaluation trains a fresh SparseTrainer on the task's device train data with the scheme and
measures it on the chosen split, for cfg.seeds training seeds. Results go to a JSON-lines cache
(search.contrib.Cache) named by model, dataset and a hash of the model file and the config, keyed
by the scheme (search.contrib.scheme_key) and seed: a rerun or a resumed search trains only what is
new. `scheduler="tcp://HOST:PORT"` sends the work to an existing Dask cluster (its workers need this
repository and the task's files at the same paths); None starts a LocalCluster of `workers` processes
with one thread each (the simulator's small integer ops gain little from more threads).
"""
import functools
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from model_prep import scheme as fmt
from model_prep.cli import at_least
from search import tasks
from search.contrib import Cache, Config, model_sha256, scheme_key

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "search"


@functools.lru_cache(maxsize=4)
def _context(task, cfg):
    """A worker's simulator and data for a task (built once per worker process)."""
    import torch
    torch.set_num_threads(1)
    from model_prep.simulate import Simulator
    return Simulator.from_tflite(task.tflite), tasks.device_data(task, cfg.train, cfg.test, seed=0)


def train_and_measure(task, cfg, scheme_dict, seed, split):
    """Accuracy of one scheme trained with one seed (runs on a Dask worker)."""
    from model_prep.sparse_train import SparseTrainer, TrainConfig
    sim, data = _context(task, cfg)
    t0 = time.time()
    t = SparseTrainer(sim, fmt.from_dict(scheme_dict),
                      TrainConfig(cfg.lr, cfg.epochs, cfg.batch_size, cfg.grad_format, seed=seed))
    t.fit(data.q_train, data.y_train)
    x, y = (data.q_test, data.y_test) if split == "test" else (data.q_val, data.y_val)
    return t.accuracy(x, y), time.time() - t0


def evaluation_config(task, table, seeds=1):
    """Real evaluations train as the contribution table's measurements did (learning rate, epochs, batch,
    gradient format, and the train subset when the table used one), on the whole validation / test split,
    each the mean over `seeds` training seeds (seed 0 first: more seeds reuse the cached ones);
    a quick task (smoke tests) on 64 train and 64 validation / test samples."""
    if task.quick:
        return Config(train=64, test=64, seeds=seeds)
    t = table["config"]
    subset = t["train"] if t["train"] < tasks.split_size(task, "train") else 0
    return Config(lr=t["lr"], epochs=t["epochs"], batch_size=t["batch_size"], grad_format=t["grad_format"],
                  train=subset, seeds=seeds)


def add_cluster_arguments(ap):
    """--scheduler, --workers, --evaluations: where the real evaluations of a command run and are cached."""
    ap.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    ap.add_argument("--workers", type=at_least(1), default=2, help="the local cluster's workers")
    ap.add_argument("--evaluations", type=Path, default=WORK, help="the evaluation cache's folder (default "
                    "build/search; `make bench-search`: results/evaluations, committed, so a fresh clone resumes "
                    "and the commands that share it train a scheme once)")


def to_stderr(line):
    """The commands' progress channel: stderr, so stdout keeps only their results."""
    print(line, file=sys.stderr, flush=True)


class Evaluator:
    def __init__(self, task, cfg=Config(), scheduler=None, workers=2, work=WORK, progress=None):
        """progress: called with a line per training run as it finishes (what, accuracy, time left), e.g. print;
        a long benchmark is otherwise silent for hours while it trains."""
        self.task, self.cfg, self.progress = task, cfg, progress
        numbers = {"evaluate": 1, "model": task.model, "dataset": task.dataset, "quick": task.quick,
                   "tflite_sha256": model_sha256(task.tflite),
                   "lr": cfg.lr, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "grad_format": cfg.grad_format,
                   "train": cfg.train, "test": cfg.test, "data_seed": 0}
        h = hashlib.sha256(json.dumps(numbers, sort_keys=True).encode()).hexdigest()[:10]
        self.cache = {split: Cache(Path(work) / f"{task.model}-{task.dataset}-{split}-{h}.jsonl",
                                   {**numbers, "split": split}) for split in ("val", "test")}
        self.scheduler, self.workers, self._client, self._cluster = scheduler, workers, None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def client(self):
        if self._client is None:
            from dask.distributed import Client, LocalCluster
            if self.scheduler:
                self._client = Client(self.scheduler)
            else:
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             dashboard_address=":0")   # any free port: clusters side by side
                self._client = Client(self._cluster)
        return self._client

    def close(self):
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def accuracy(self, schemes, split="test", seeds=None):
        """Mean accuracy over cfg.seeds (or `seeds`) training seeds per scheme, trained where the cache lacks it."""
        return [float(np.mean(a)) for a in self.per_seed(schemes, split, seeds)]

    def per_seed(self, schemes, split="test", seeds=None):
        """[[accuracy with training seed 0, 1, ...] per scheme] for cfg.seeds (or `seeds`) seeds, trained where
        the cache lacks it."""
        seeds = range(seeds or self.cfg.seeds)
        cache = self.cache[split]
        keys = [scheme_key(s) for s in schemes]
        todo = {(k, s): sch for k, sch in zip(keys, schemes) for s in seeds if (k, s) not in cache.results}
        if todo:
            client = self.client()
            futures = {client.submit(train_and_measure, self.task, self.cfg, sch.to_dict(), s, split,
                                     pure=False): (k, s) for (k, s), sch in todo.items()}
            from dask.distributed import as_completed
            t0 = time.time()
            for done, fut in enumerate(as_completed(futures), 1):
                k, s = futures[fut]
                acc, seconds = fut.result()
                cache.add(k, s, acc, seconds, "evaluate")
                if self.progress:
                    left = (time.time() - t0) / done * (len(futures) - done)
                    self.progress(f"{self.task.model}/{self.task.dataset} {split}: {done}/{len(futures)} trained "
                                  f"(scheme {k} seed {s}: {100 * acc:.1f} %, {seconds:.0f} s; "
                                  f"~{left / 60:.0f} min left)")
        return [[cache.results[(k, s)] for s in seeds] for k in keys]
