# tfod-synth. `make demo` and `make test` set everything up on first use (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
WS     ?= workspace
STAMP  := $(VENV)/.tfod-setup-done
DEMO_STEPS ?= 300
DEMO_IMAGES ?= 1000
# A template name in pipelines/ or a path, e.g. bench/results/small_cpu_demo_grid.config with DEMO_STEPS=400 (the demo before 2026-12-07).
DEMO_TEMPLATE ?= small_cpu_demo
# A pipeline fragment merged over the template, e.g. DEMO_OVERRIDE='model { faster_rcnn { initial_crop_size: 8 } }'.
DEMO_OVERRIDE ?=
HEADER_DEMO_STEPS ?= 10
# Two pytest processes: the end-to-end test (about 10 min) runs beside all the others.
TEST_WORKERS ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONWARNINGS ?= ignore::FutureWarning

.PHONY: setup demo demo-headers test test-fast bench bench-transfer clean help

help:
	@echo "make demo [DEMO_STEPS=300] [DEMO_IMAGES=1000] [DEMO_TEMPLATE=small_cpu_demo] [DEMO_OVERRIDE=fragment] - set up if needed, then: composites -> TFRecords -> train -> export -> predictions in $(WS)/"
	@echo "make demo-headers - the same path for headers in HTML pages rendered by Chromium (embedded default)"
	@echo "make test   - set up if needed, then run the test suite"
	@echo "make setup  - create/refresh the virtual environment in $(VENV) (idempotent)"
	@echo "make bench  - benchmarks; results in bench/out/"
	@echo "make bench-transfer [QUICK=1] [TEMPLATE=name or path] [STEPS=2000] [REPEATS=2] [OVERRIDE=fragment] - train on composites, score on real photos (REAL=folder; about 2.7 h on 2 cores, QUICK=1 about 20 min); bench/out/transfer.json"

# The stamp is rebuilt when the pins, the package metadata, the protos or the script change.
$(STAMP): constraints.txt setup.cfg pyproject.toml scripts/setup.sh $(wildcard protos/*.proto)
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	@touch $@

setup:
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	@touch $(STAMP)

demo: $(STAMP)
	@echo "demo: 1/5 generating $(DEMO_IMAGES) composites of the embedded default into $(WS)/data/demo"
	@rm -rf $(WS)/data/demo $(WS)/runs/demo $(WS)/exports/demo $(WS)/predictions/demo
	$(PY) tools/make_tfrecords.py --output_dir=$(WS)/data/demo --num_images=$(DEMO_IMAGES) --preview
	@echo "demo: 2/5 writing $(WS)/runs/demo/pipeline.config from $(DEMO_TEMPLATE)"
	$(PY) tools/configure_pipeline.py --template=$(DEMO_TEMPLATE) --data_dir=$(WS)/data/demo \
		--run_dir=$(WS)/runs/demo --num_steps=$(DEMO_STEPS) $(if $(DEMO_OVERRIDE),--config_override='$(DEMO_OVERRIDE)',)
	@echo "demo: 3/5 training $(DEMO_STEPS) steps from scratch with the OD API's model_main_tf2 loop (2 to 2.6 s a step on 2 cores: 11 to 15 min with start-up)"
	$(PY) tools/model_main_tf2.py --pipeline_config_path=$(WS)/runs/demo/pipeline.config \
		--model_dir=$(WS)/runs/demo --num_train_steps=$(DEMO_STEPS) --checkpoint_every_n=$(DEMO_STEPS) \
		>$(WS)/runs/demo/train.log 2>&1 || { tail -n 30 $(WS)/runs/demo/train.log; \
		echo "demo: training failed; full log in $(WS)/runs/demo/train.log" >&2; exit 1; }
	@echo "demo: trained; log in $(WS)/runs/demo/train.log, TensorBoard: tensorboard --logdir=$(WS)/runs/demo"
	@echo "demo: 4/5 exporting a SavedModel for TF Serving to $(WS)/exports/demo/1 (keeping 100 proposals; training kept 32)"
	$(PY) tools/export_model.py --pipeline_config_path=$(WS)/runs/demo/pipeline.config \
		--trained_checkpoint_dir=$(WS)/runs/demo --export_dir=$(WS)/exports --model_name=demo --max_proposals=100
	@echo "demo: 5/5 drawing detections with score >= 0.5 on 8 val composites (labelled boxes in green) into $(WS)/predictions/demo, and counting the logos they find"
	$(PY) tools/predict.py --model=$(WS)/exports/demo --output_dir=$(WS)/predictions/demo \
		--tfrecord='$(WS)/data/demo/val-*.tfrecord' --max_images=8 --min_score=0.5 --max_detections=5
	@echo "demo: done. Look at $(WS)/data/demo/preview.jpg and $(WS)/predictions/demo/*.jpg"

# Headers in documents: pages built from the installed packages' own documentation, rendered by
# headless Chromium, header boxes from the DOM; then the same OD API path as `make demo`.
HD := headers-demo
demo-headers: $(STAMP)
	@echo "demo-headers: 1/5 rendering 120 pages of the embedded default (installed packages' docs) into $(WS)/data/$(HD)"
	@rm -rf $(WS)/data/$(HD) $(WS)/runs/$(HD) $(WS)/exports/$(HD) $(WS)/predictions/$(HD)
	$(PY) tools/make_header_tfrecords.py --output_dir=$(WS)/data/$(HD) --preview
	@echo "demo-headers: 2/5 writing $(WS)/runs/$(HD)/pipeline.config from pipelines/small_cpu_headers.config"
	$(PY) tools/configure_pipeline.py --template=small_cpu_headers --data_dir=$(WS)/data/$(HD) \
		--run_dir=$(WS)/runs/$(HD) --num_steps=$(HEADER_DEMO_STEPS)
	@echo "demo-headers: 3/5 training $(HEADER_DEMO_STEPS) steps with the OD API's model_main_tf2 loop"
	$(PY) tools/model_main_tf2.py --pipeline_config_path=$(WS)/runs/$(HD)/pipeline.config \
		--model_dir=$(WS)/runs/$(HD) --num_train_steps=$(HEADER_DEMO_STEPS) --checkpoint_every_n=$(HEADER_DEMO_STEPS) \
		>$(WS)/runs/$(HD)/train.log 2>&1 || { tail -n 30 $(WS)/runs/$(HD)/train.log; \
		echo "demo-headers: training failed; full log in $(WS)/runs/$(HD)/train.log" >&2; exit 1; }
	@echo "demo-headers: 4/5 exporting a SavedModel to $(WS)/exports/$(HD)/1"
	$(PY) tools/export_model.py --pipeline_config_path=$(WS)/runs/$(HD)/pipeline.config \
		--trained_checkpoint_dir=$(WS)/runs/$(HD) --export_dir=$(WS)/exports --model_name=$(HD)
	@echo "demo-headers: 5/5 drawing the 10 best detections on 8 val pages into $(WS)/predictions/$(HD)"
	$(PY) tools/predict.py --model=$(WS)/exports/$(HD) --output_dir=$(WS)/predictions/$(HD) \
		--tfrecord='$(WS)/data/$(HD)/val-*.tfrecord' --max_images=8 --min_score=0 --max_detections=10
	@echo "demo-headers: done. Look at $(WS)/data/$(HD)/preview.jpg and $(WS)/predictions/$(HD)/*.jpg"

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --durations=15 tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" tests

bench: $(STAMP)
	$(PY) bench/run.py

# Real photos decide (bench/transfer.py): trains one detector per arm, so it is not part of `make bench`.
REAL ?= ../shared/data/flickrlogos27
ARMS ?= realism,naive
bench-transfer: $(STAMP)
	$(PY) bench/transfer.py --real=$(REAL) --arms=$(ARMS) $(if $(QUICK),--quick,) $(if $(TEMPLATE),--template=$(TEMPLATE),) $(if $(STEPS),--steps=$(STEPS),) $(if $(REPEATS),--repeats=$(REPEATS),) $(if $(OVERRIDE),--config_override='$(OVERRIDE)',)

clean:
	rm -rf $(VENV) $(WS)/data/demo $(WS)/runs/demo $(WS)/exports/demo $(WS)/predictions/demo
	rm -rf $(WS)/data/$(HD) $(WS)/runs/$(HD) $(WS)/exports/$(HD) $(WS)/predictions/$(HD)
