# `make demo` and `make test` work on a fresh machine: the first run creates .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow bench bench-long fuzz clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev,deploy,plots,mcu]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m squeezenet.demo

# `make test`: every check, in about 5 minutes on 2 cores. The campaigns marked slow (every Table 2
# row, kills at many moments) each have a fast variant in `make test`; `make test-slow` runs them.
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" tests

test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow tests

# Benchmarks rewrite their own sections of BENCHMARKS.md. The long ones (up to an hour each on
# 2 cores: CIFAR-10 time to accuracy, the ImageNet bytes-vs-accuracy curve, int8 on 843 photos, the
# TFLite Micro conversion, which also needs the tflite extra) are in bench-long.
LONG_BENCHMARKS := benchmarks/bench_time_to_accuracy.py benchmarks/bench_imagenet_compression.py \
	benchmarks/bench_int8.py benchmarks/bench_tflite_micro.py
bench: $(BIN)/.installed
	for script in $(filter-out $(LONG_BENCHMARKS),$(wildcard benchmarks/bench_*.py)); do \
		$(BIN)/python $$script || exit 1; done

bench-long: $(BIN)/.installed
	$(BIN)/pip install -q -e ".[tflite]"
	for script in $(LONG_BENCHMARKS); do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache

# Coverage-guided fuzzing of the .net and .sqz parsers; FUZZ_SECONDS bounds the run.
FUZZ_SECONDS ?= 300
fuzz: $(BIN)/.installed
	$(BIN)/pip install -q atheris
	$(BIN)/python fuzz/make_seeds.py ../shared/data/deep-compression-squeezenet/compressed_SqueezeNet.net build/fuzz-corpus
	mkdir -p build/fuzz-findings
	$(BIN)/python fuzz/fuzz_readers.py build/fuzz-corpus -max_total_time=$(FUZZ_SECONDS) -timeout=2 \
		-rss_limit_mb=2048 -max_len=700000 -artifact_prefix=build/fuzz-findings/
