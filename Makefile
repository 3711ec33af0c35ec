# make test            install what is missing, build (debug), run every test
# make run ARGS="..."  build release and serve, e.g. make run ARGS="--port 9090"
# make bench ARGS="..." build release and run the benchmarks
.PHONY: deps build test run bench

ARGS ?=

deps:
	@bash scripts/deps.sh

# deps first: the build needs the JavaScriptCore headers.
build: deps
	swift build --build-tests

test: deps build
	bash scripts/test.sh

run: deps
	swift build -c release --product switchyard
	exec .build/release/switchyard serve $(ARGS)

bench: deps
	bash scripts/bench.sh $(ARGS)
