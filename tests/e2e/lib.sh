# Shared by the end-to-end scripts (sourced, not run): counting checks, skipping loudly
# (a failure under CI=true), free ports, waiting for a server. Set NAME before sourcing.
passed=0
failed=0

skip_or_fail() {
  if [ -n "${CI:-}" ] && [ "${CI}" != false ]; then
    echo "FAIL: $1 (CI=true turns skips into failures)"; echo "0 passed, 1 failed"; exit 1
  fi
  echo "!!!!! SKIPPED ${NAME:-e2e}: $1 !!!!!"; echo "0 passed, 0 failed"; exit 0
}

check() { # name, command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL [TRIES]: until URL/healthz answers, 50 ms apart.
wait_http() { for _ in $(seq 1 "${2:-100}"); do curl -s -o /dev/null "$1/healthz" && return 0; sleep 0.05; done; return 1; }
