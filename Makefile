# make test            install what is missing, build (debug), run every test
# make run ARGS="..."  build release and serve, e.g. make run ARGS="--port 9090"
# make bench ARGS="..." build release and run the benchmarks
# make fuzz            libFuzzer on the JSON and record-query parsers, FUZZ_SECONDS each (default 60)
# make lint            check the formatting (.swift-format); builds nothing, needs no deps
# make format          rewrite the sources as .swift-format says
.PHONY: deps build test run bench fuzz lint format

SWIFT_SOURCES = Package.swift Plugins Sources Tests bench fuzz

ARGS ?=
FUZZ_SECONDS ?= 60

deps:
	@bash scripts/deps.sh

# deps first: the build needs the JavaScriptCore headers.
build: deps
	swift build --build-tests

# lint first: a formatting slip fails in seconds, before any build.
test: lint deps build
	bash scripts/test.sh

run: deps
	swift build -c release --product switchyard
	exec .build/release/switchyard serve $(ARGS)

bench: deps
	bash scripts/bench.sh $(ARGS)

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

lint:
	swift format lint --strict --parallel --recursive $(SWIFT_SOURCES)

format:
	swift format format --in-place --parallel --recursive $(SWIFT_SOURCES)
