# Recipes for following the workshop. `just` alone lists them.

# List the recipes
default:
    @just --list

# Run step N's demo (1 to 7), passing any extra arguments: `just run 3 --trace`
[no-exit-message]
run N *ARGS: (_step N "1")
    @cargo run --quiet --package "$(sed -n 's/^name = "\(.*\)"/\1/p' steps/0{{N}}-*/Cargo.toml)" -- {{ARGS}}

# Show what changed from step N-1 to step N, as the book shows it (a new file shows whole)
[no-exit-message]
diff N: (_step N "2")
    @diff -ruN steps/0$(({{N}} - 1))-* steps/0{{N}}-* | sed -E 's/^(---|\+\+\+) ([^\t]*)\t.*/\1 \2/'

# Build the book into book/build (open book/build/index.html; it works offline)
book:
    mdbook build book

# Serve the book on http://localhost:3000, rebuilding it as its files change
book-serve:
    mdbook serve book

# Regenerate the book's diffs and demo outputs (book/src/generated); `--check` only checks them
book-sync *ARGS:
    cargo run -q -p workshop-tests --bin book-sync -- {{ARGS}}

# Check, writing nothing, that the book's generated files match the steps (CI runs it)
book-check:
    cargo run -q -p workshop-tests --bin book-sync -- --check

# Measure step 1's blocking proxy against step 7's async one (N clients, origin delay in ms)
compare N="50" DELAY_MS="100":
    @cargo run --quiet --release --package step7-tasks -- compare {{N}} {{DELAY_MS}}

# The loop's benchmarks on every step, against tokio and asyncio, the selectors, the proxies
bench:
    cargo bench --package workshop-tests --bench event_loop
    cargo bench --package workshop-tests --bench versus
    cargo bench --package workshop-tests --bench selectors
    cargo bench --package workshop-tests --bench connections
    @cargo run --quiet --release --package step7-tasks -- compare 200 100

# Step 7's proxy under slowloris, a bulk download, keep-alive, dead lookups, a slow upload, a client that never reads, idle connections (see stress.rs)
stress *ARGS:
    cargo bench --package workshop-tests --bench stress -- {{ARGS}}

# Run every test of every step (the same command CI runs)
test:
    cargo test --workspace

# Step N's functions to write yourself (3 to 7); `just exercise N --restore` puts back the solution
[no-exit-message]
exercise N *RESTORE: (_step N "3")
    @cargo run -q -p workshop-tests --bin exercise -- {{N}} {{RESTORE}}

# Without N: format, lint and test, as CI does. With N: which of step N's rules hold
[no-exit-message]
check N="":
    @{{ if N == "" { "just ci" } else { "just _check-step " + N } }}

# Format, lint, test, check that the book is current and build it: what CI runs (.ci/run)
ci:
    bash .ci/run

# Runs step N's behaviour tests and lists which rules hold
[private]
[no-exit-message]
_check-step N:
    @cargo run -q -p workshop-tests --bin exercise -- check {{N}}

# Refuses a step number outside FIRST..7 with a message, before anything runs
[private]
[no-exit-message]
_step N FIRST:
    @case "{{N}}" in [{{FIRST}}-7]) ;; *) echo "error: '{{N}}' is not a step number here: \
        choose one from {{FIRST}} to 7" >&2; exit 1;; esac
