# spate - top-level entry points. CMake does the building; this file only
# strings the steps together so a fresh Debian 12 machine needs one command.
#
#   make run    install what is missing, build, serve on 127.0.0.1:8000
#   make test   install what is missing, build (-Werror), run every test in
#               the release build and again in the ASan+UBSan build
#   make fuzz   build the libFuzzer targets (clang) and run each for FUZZ_SECONDS
#   make bench  run the benchmarks under bench/ (see docs/BENCHMARKS.md)

JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CTEST_ARGS ?= --output-on-failure --timeout 600
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: all deps deps-test build build-asan run test test-release test-asan fuzz bench format clean

all: build

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh all

build/build.ninja:
	cmake --preset release $(CMAKE_ARGS)

build: deps build/build.ninja
	cmake --build build -j $(JOBS)

build-asan/build.ninja:
	cmake --preset asan -DSPATE_WERROR=ON $(CMAKE_ARGS)

build-asan: deps-test build-asan/build.ninja
	cmake --build build-asan -j $(JOBS)

run: build
	./build/spate serve --host $(HOST) --port $(PORT)

test-release: deps-test build/build.ninja
	cmake -S . -B build -DSPATE_WERROR=ON >/dev/null
	cmake --build build -j $(JOBS)
	ctest --test-dir build $(CTEST_ARGS)

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan $(CTEST_ARGS)

test: test-release test-asan

build-fuzz/build.ninja:
	cmake --preset fuzz $(CMAKE_ARGS)

fuzz: deps-test build-fuzz/build.ninja
	cmake --build build-fuzz -j $(JOBS)
	scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

bench: build deps-test
	@for b in bench/*.sh; do echo "== $$b"; $$b || exit 1; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-debug build-fuzz
