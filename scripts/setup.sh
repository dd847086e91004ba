# Sourced by scripts/up and scripts/test: installs what a fresh Debian/Ubuntu machine with Rust
# lacks (the wasm32-wasip2 target, redis-server), and nothing that is already there.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "==> installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
fi

if ! command -v redis-server >/dev/null 2>&1; then
    echo "==> installing redis-server"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
fi

# Every component crate under components/, as cargo package flags.
component_packages() {
    for manifest in components/*/Cargo.toml; do
        printf -- '-p %s ' "$(basename "$(dirname "$manifest")")"
    done
}

build_components() {
    echo "==> building the components (wasm32-wasip2, release)"
    # shellcheck disable=SC2046
    cargo build --release --target wasm32-wasip2 $(component_packages)
}
