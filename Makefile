# Every target is a one-line wrapper around a documented command (see README.md).
#   make demo              the keyword-spotting job end to end on the emulated Cortex-M7
#   make test              the whole suite
#   make firmware BOARD=…  host | qemu-m7 | stm32f746
#   make flash BOARD=stm32f746

PY := .venv/bin/python
BOARD ?= qemu-m7
KWS := build/kws
SEED ?= 0
LR ?= 0.02
BUDGET ?= 64KB
CONTRIB_SEEDS ?= 3

.PHONY: setup demo test firmware flash corpus pretrain export scheme bake clean config_info verify bench-methods \
	bench-firmware plan-vs-measured bench-search

setup:
	scripts/setup.sh

# --- the keyword-spotting pipeline: corpus -> checkpoint -> .tflite -> baked C++ -> ELF ----------
$(KWS)/corpus/corpus.json:
	$(PY) -m model_prep.data.synth_kws --out $(KWS)/corpus --seed $(SEED)

$(KWS)/dscnn.pt: $(KWS)/corpus/corpus.json
	$(PY) -m model_prep.pretrain --data $(KWS)/corpus --out $@

$(KWS)/dscnn.tflite: $(KWS)/dscnn.pt
	$(PY) -m model_prep.export $< -o $@ --data $(KWS)/corpus

# the scheme: a contribution analysis of this model on the device group's train / validation data (the
# last 4 layers, as the device streams them: batch 1; every entry the mean of CONTRIB_SEEDS training runs,
# since one run's noise, 2-3 points on DS-CNN, is as large as the entries), then NSGA-II within BUDGET of SRAM
$(KWS)/contrib.json: $(KWS)/dscnn.tflite
	$(PY) -m search.contrib --model dscnn --dataset kws --checkpoint $(KWS)/dscnn.pt --tflite $< --data $(KWS)/corpus \
		--layers last:4 --ratios 1/4,1 --k-step 3 --train 400 --batch-size 1 --lr $(LR) --seeds $(CONTRIB_SEEDS) --out $@

$(KWS)/scheme.json: $(KWS)/dscnn.tflite $(KWS)/contrib.json
	$(PY) -m search.run --model dscnn --dataset kws --tflite $< --contrib $(KWS)/contrib.json \
		--budget $(BUDGET) --out $@

$(KWS)/baked/model_data.cc: $(KWS)/dscnn.tflite $(KWS)/scheme.json
	$(PY) -m model_prep.bake $< -o $(KWS)/baked --scheme $(KWS)/scheme.json --lr $(LR)

corpus: setup $(KWS)/corpus/corpus.json
pretrain: setup $(KWS)/dscnn.pt
export: setup $(KWS)/dscnn.tflite
scheme: setup $(KWS)/scheme.json
bake: setup $(KWS)/baked/model_data.cc

firmware: bake
	$(MAKE) -C firmware BOARD=$(BOARD) APP=app MODEL_DIR=../$(KWS)/baked BUILD_DIR=../build/firmware/$(BOARD)

flash: bake
	$(MAKE) -C firmware BOARD=$(BOARD) APP=app MODEL_DIR=../$(KWS)/baked BUILD_DIR=../build/firmware/$(BOARD) flash

demo: setup
	$(MAKE) firmware BOARD=qemu-m7
	$(PY) host_tools/stream.py --dataset kws --data $(KWS)/corpus --emulate qemu-m7 \
		--elf build/firmware/qemu-m7/firmware.elf --out build/demo/summary.json \
		--save-model build/demo/adapted.tflite --baked $(KWS)/baked
	mkdir -p results && cp build/demo/summary.json results/kws_demo.json && cp build/demo/summary.png results/kws_demo.png
	$(PY) scripts/readme_results.py

test: setup
	$(PY) -m pytest -q

verify: setup
	$(PY) -m model_prep.verify --all
	$(PY) scripts/readme_results.py

bench-methods: setup
	$(PY) -m search.bench_methods
	$(PY) scripts/readme_results.py

bench-firmware: setup
	$(PY) -m host_tools.bench_firmware
	$(PY) scripts/readme_results.py

plan-vs-measured: setup
	$(PY) -m host_tools.plan_vs_measured
	$(PY) scripts/readme_results.py

# the training runs of the bench are cached in results/evaluations (committed, since the --shrink row): a fresh
# clone whose pre-training reproduces the same int8 models (the cache is keyed by their SHA-256) resumes there
ROWS_SEARCHED = --row kws/dscnn --row kws/mcunet@128,256 --row digits/mcunet@256
EVALUATIONS = --evaluations results/evaluations
SEARCH_ROWS = $(ROWS_SEARCHED) $(EVALUATIONS)
bench-search: setup
	$(PY) -m search.bench_init $(ROWS_SEARCHED)
	$(PY) -m search.bench $(SEARCH_ROWS) --out results/search_greedy.json
	$(PY) -m search.bench --row kws/dscnn --row kws/mcunet@128 --row digits/mcunet@256 $(EVALUATIONS) \
		--train-seeds 3 --out results/search_greedy_train_seeds.json
	$(PY) -m search.bench $(SEARCH_ROWS) --init sparse   # results/search.json: the GAs' start before --init
	$(PY) -m search.bench $(SEARCH_ROWS) --init sparse --train-seeds 3 --out results/search_train_seeds.json
	$(PY) -m search.bench $(SEARCH_ROWS) --init sparse --shrink --out results/search_shrink.json
	$(PY) -m search.seed_noise $(SEARCH_ROWS) --init sparse
	$(PY) -m search.gain_refit --bench results/search_shrink.json
	$(PY) scripts/readme_results.py

config_info:
	$(MAKE) -C firmware BOARD=$(BOARD) config_info

clean:
	rm -rf build
