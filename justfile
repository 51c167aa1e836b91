# Recipes for following the workshop. `just` alone lists them.

# List the recipes
default:
    @just --list

# Run step N's demo (1 to 7), passing any extra arguments: `just run 3 --debug`
run N *ARGS:
    @cargo run --quiet --package "$(sed -n 's/^name = "\(.*\)"/\1/p' steps/0{{N}}-*/Cargo.toml)" -- {{ARGS}}

# Show what changed from step N-1 to step N, as the book shows it
diff N:
    @diff -ru steps/0$(({{N}} - 1))-* steps/0{{N}}-* | sed -E 's/^(---|\+\+\+) ([^\t]*)\t.*/\1 \2/'


# Run every test of every step (the same command CI runs)
test:
    cargo test --workspace

# Format, lint and test, as CI does
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace
