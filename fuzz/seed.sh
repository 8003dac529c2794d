#!/usr/bin/env bash
# Seeds the fuzz corpora from the project's own scripts (run from anywhere):
# parse gets every .conc file of tests/ and scripts/; pipeline gets them as
# raw scripts (first byte 1: the OS engine, 3: the controlled one), except
# those that start processes, plus a few inputs for the generator (first
# byte 0). The wire seeds are written by a test (see the README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
mkdir -p corpus/parse corpus/pipeline corpus/wire
find ../tests ../scripts -name '*.conc' | sort | while read -r f; do
    name=$(echo "$f" | sed 's|^\.\./||; s|/|_|g')
    cp "$f" "corpus/parse/$name"
    if ! grep -q process "$f"; then
        { printf '\001'; cat "$f"; } > "corpus/pipeline/raw-$name"
        { printf '\003'; cat "$f"; } > "corpus/pipeline/sched-$name"
    fi
done
for i in $(seq 0 15); do
    { printf '\000'; head -c $((i * 16)) /dev/urandom; } > "corpus/pipeline/gen-$i"
done
