#!/usr/bin/env bash
# The remote rows of the README's benchmark table, in one run on this
# machine: test hosts in network namespaces (tests/remote/hosts.sh, needs
# root and Debian's openssh-server), a child on host h1 against a local one.
#   bash benches/remote/run.sh [path/to/conc]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
conc=${1:-$root/target/release/conc}
dir=$(mktemp -d /tmp/conc-bench-hosts.XXXXXX)
n=$(( $$ % 250 ))
trap 'bash "$root/tests/remote/hosts.sh" down "$dir" "$n"; rm -rf "$dir"' EXIT
bash "$root/tests/remote/hosts.sh" up "$dir" "$n"
export CONC_SSH="ssh -F $dir/ssh_config"

# `ssh host true`, each a login of its own (as a first spawn is).
ssh_true=$(python3 - "$dir/ssh_config" <<'PY'
import subprocess, sys, time
runs = []
for _ in range(5):
    t = time.perf_counter()
    subprocess.run(["ssh", "-F", sys.argv[1], "-o", "BatchMode=yes", "h1", "true"], check=True)
    runs.append(time.perf_counter() - t)
print(sorted(runs)[len(runs) // 2])
PY
)
# The floor of any synchronous operation: one byte echoed through ssh.
ssh_echo=$(python3 - "$dir/ssh_config" <<'PY'
import subprocess, sys, time
p = subprocess.Popen(["ssh", "-F", sys.argv[1], "-T", "-o", "BatchMode=yes", "h1", "cat"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
p.stdin.write(b"x"); p.stdout.read(1)
n = 2000
t = time.perf_counter()
for _ in range(n):
    p.stdin.write(b"x"); p.stdout.read(1)
print((time.perf_counter() - t) / n)
p.stdin.close(); p.wait()
PY
)
out=$("$conc" "$root/benches/remote/remote.conc" h1)
get() { echo "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
python3 - "$ssh_echo" "$ssh_true" "$(get first_spawn)" "$(get later_spawn)" "$(get rtt_local)" "$(get rtt_remote)" "$(get items_local)" "$(get items_remote)" <<'PY'
import sys
echo, ssh_true, first, later, rtt_l, rtt_r, it_l, it_r = map(float, sys.argv[1:])
rows = [
    ("remote get round trip", f"{rtt_r * 1e6:.0f} us", f"local child {rtt_l * 1e6:.0f} us", f"{rtt_r / rtt_l:.2f}x", "<= 2x"),
    ("items/s from a remote producer", f"{it_r:,.0f}/s", f"local child {it_l:,.0f}/s", f"{it_r / it_l * 100:.0f} %", ">= 50 %"),
    ("first remote spawn + join", f"{first * 1e3:.0f} ms", f"ssh h1 true {ssh_true * 1e3:.0f} ms", f"{first / ssh_true:.2f}x", "<= 1.2x"),
    ("later remote spawn + join", f"{later * 1e3:.1f} ms", "", "", "<= 20 ms"),
    ("(floor) a byte echoed by `ssh h1 cat`", f"{echo * 1e6:.0f} us", "", "", ""),
]
print("| row | remote | against | ratio | target |")
print("| --- | --- | --- | --- | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
