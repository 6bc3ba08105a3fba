#!/usr/bin/env bash
# Run pjdfstest, the POSIX conformance suite for FUSE filesystems, on a mounted cosfs.
#   scripts/posix.sh MOUNTPOINT [TEST ...]
# TEST is a directory of the suite (chmod, rename, ...) or one file (rename/00); without
# any, every core file runs except chown/00, open/25, rename/09 and rename/10 (minutes each
# of uid/gid permutations; name them to run them). Each file runs with `prove`, as root, in
# a fresh directory of the mount, removed after. The mount needs -o allow_other (the tests
# switch uids). Prints passed/total assertions per directory, and the total outside link/
# (hard links are refused by design); each file's TAP output is kept in $POSIX_RESULTS.
#
# The suite is vendored in tests/pjdfstest (upstream pjd/pjdfstest at the commit named in
# tests/pjdfstest/README.md; BSD licence in its COPYING): CI cannot reach GitHub. It is
# compiled here with a config.h for Linux instead of its autotools build.
# Environment: POSIX_BUILD (build directory, default a temporary one), POSIX_RESULTS
# (where the TAP output goes, default $POSIX_BUILD/results), POSIX_TIMEOUT (seconds per
# file, default 600).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source_dir="$repo/tests/pjdfstest"

if [ $# -lt 1 ]; then
    echo "usage: scripts/posix.sh MOUNTPOINT [TEST ...]" >&2
    exit 2
fi
mountpoint=$(cd "$1" && pwd) || { echo "posix.sh: no directory $1" >&2; exit 2; }
shift
if [ "$(id -u)" -ne 0 ]; then
    echo "posix.sh: pjdfstest must run as root (it switches uids)" >&2
    exit 2
fi
if ! mountpoint -q "$mountpoint"; then
    echo "posix.sh: $mountpoint is not a mount point" >&2
    exit 2
fi
for tool in cc prove; do
    command -v "$tool" >/dev/null || { echo "posix.sh: $tool is missing (apt-get install gcc perl)" >&2; exit 2; }
done

build=${POSIX_BUILD:-$(mktemp -d "${TMPDIR:-/tmp}/cosfs-pjdfstest.XXXXXX")}
results=${POSIX_RESULTS:-$build/results}
per_file_timeout=${POSIX_TIMEOUT:-600}
mkdir -p "$build" "$results"

# The Linux answers to pjdfstest's configure checks (glibc has every *at call, no chflags,
# no lchmod, stat's timespec fields are st_atim and the like).
cat >"$build/config.h" <<'EOF'
#define HAVE_SYS_SYSMACROS_H 1
#define HAVE_FACCESSAT 1
#define HAVE_FCHMODAT 1
#define HAVE_FCHOWNAT 1
#define HAVE_FSTATAT 1
#define HAVE_LINKAT 1
#define HAVE_MKDIRAT 1
#define HAVE_MKFIFOAT 1
#define HAVE_MKNODAT 1
#define HAVE_OPENAT 1
#define HAVE_POSIX_FALLOCATE 1
#define HAVE_READLINKAT 1
#define HAVE_RENAMEAT 1
#define HAVE_SYMLINKAT 1
#define HAVE_UNLINKAT 1
#define HAVE_UTIMENSAT 1
#define HAVE_STRUCT_STAT_ST_ATIM 1
#define HAVE_STRUCT_STAT_ST_CTIM 1
#define HAVE_STRUCT_STAT_ST_MTIM 1
EOF
if [ ! -x "$build/pjdfstest" ] || [ "$source_dir/pjdfstest.c" -nt "$build/pjdfstest" ]; then
    cc -O2 -D_GNU_SOURCE -I"$build" -o "$build/pjdfstest" "$source_dir/pjdfstest.c" || exit 2
fi
# misc.sh finds the binary by walking up from each test file: the tests live beside it.
rm -rf "$build/tests"
cp -R "$source_dir/tests" "$build/tests"

skipped=" chown/00 open/25 rename/09 rename/10 "
files=()
if [ $# -eq 0 ]; then
    for file in "$build"/tests/*/*.t; do
        name=${file#"$build/tests/"}
        case "$skipped" in *" ${name%.t} "*) continue ;; esac
        files+=("$name")
    done
else
    for test in "$@"; do
        test=${test%.t}
        if [ -d "$build/tests/$test" ]; then
            for file in "$build/tests/$test"/*.t; do files+=("${file#"$build/tests/"}"); done
        elif [ -f "$build/tests/$test.t" ]; then
            files+=("$test.t")
        else
            echo "posix.sh: no test $test in $source_dir/tests" >&2
            exit 2
        fi
    done
fi

declare -A passed total
for name in "${files[@]}"; do
    dir=${name%%/*}
    work=$(mktemp -d "$mountpoint/pjdfstest.XXXXXX")
    chmod 0755 "$work"
    out="$results/${name//\//_}.tap"
    (cd "$work" && timeout "$per_file_timeout" prove -v -f "$build/tests/$name" >"$out" 2>&1)
    rm -rf "$work" 2>/dev/null
    # The plan says how many assertions the file has; a file that stops early (or times
    # out) fails the ones it never reached.
    plan=$(grep -m1 -oE '^1\.\.[0-9]+' "$out" | cut -d. -f3)
    # As prove counts them: a "not ok ... # TODO" is a failure pjdfstest expects (POSIX allows it).
    ok=$(grep -cE '^ok [0-9]+|^not ok [0-9]+ # TODO' "$out")
    plan=${plan:-$ok}
    passed[$dir]=$(( ${passed[$dir]:-0} + ok ))
    total[$dir]=$(( ${total[$dir]:-0} + plan ))
    printf '%-22s %5d/%-5d\n' "$name" "$ok" "$plan" >>"$results/summary.txt"
done

all_passed=0
all_total=0
printf '%-16s %s\n' directory passed/total
for dir in $(printf '%s\n' "${!total[@]}" | sort); do
    printf '%-16s %5d/%-5d\n' "$dir" "${passed[$dir]}" "${total[$dir]}"
    if [ "$dir" != link ]; then
        all_passed=$(( all_passed + ${passed[$dir]} ))
        all_total=$(( all_total + ${total[$dir]} ))
    fi
done
printf '%-16s %5d/%-5d\n' "all but link" "$all_passed" "$all_total"
echo "TAP output of each file: $results"
