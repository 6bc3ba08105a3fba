#!/usr/bin/env bash
# Try cosfs without a COS account: a local COS emulator with a demo bucket, mounted at ./cos-demo.
#   scripts/quickstart.sh          install what is missing, start, mount, copy a few files in
#   scripts/quickstart.sh stop     unmount and stop the emulator
# Everything lives in ./.cosfs-demo (emulator data, credentials, logs) and ./cos-demo (the mount).
set -euo pipefail

here=$(pwd)
state="$here/.cosfs-demo"
mountpoint="$here/cos-demo"
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
bucket=demo-1250000000

unmount() {
    if mountpoint -q "$mountpoint" 2>/dev/null; then
        fusermount3 -u "$mountpoint" 2>/dev/null || fusermount -u "$mountpoint" 2>/dev/null || umount "$mountpoint"
    fi
}

stop() {
    unmount
    if [ -f "$state/emulator.pid" ]; then
        pid=$(cat "$state/emulator.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$state/emulator.pid"
    fi
    echo "stopped: $mountpoint unmounted, emulator stopped (its data stays in $state/data)"
}

if [ "${1:-}" = "stop" ]; then
    stop
    exit 0
fi

# 1. What the mount needs from the system: FUSE 3 and Python's venv.
missing=()
command -v fusermount3 >/dev/null || missing+=(fuse3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "quickstart: please install ${missing[*]} first: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "installing ${missing[*]} ..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
    echo "quickstart: /dev/fuse is missing: load the fuse module (sudo modprobe fuse)" >&2
    exit 1
fi

# 2. cosfs itself, in a virtual environment next to the sources; installed again whenever the
#    sources changed since (a stamp of their content), so a pull never runs stale code.
stamp=$(cd "$repo" && find cosfs setup.cfg pyproject.toml -type f \( -name '*.py' -o -name '*.cfg' -o -name '*.toml' \) \
    -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/cosfs" ] || [ "$(cat "$venv/.cosfs-source-stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "installing cosfs into $venv ..."
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$repo"
    echo "$stamp" > "$venv/.cosfs-source-stamp"
fi

# 3. The emulator, in the background, on a free port.
mkdir -p "$state" "$mountpoint"
if [ -f "$state/emulator.pid" ] && kill -0 "$(cat "$state/emulator.pid")" 2>/dev/null; then
    echo "quickstart: already running; run '$0 stop' first" >&2
    exit 1
fi
# The demo key pair, in one file only its owner can read: the emulator accepts it, the mount
# signs with it. Neither gets the key on its command line, where ps shows it to every user.
secret_id=AKIDdemo$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret_key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s:%s\n' "$secret_id" "$secret_key" >"$state/passwd-cosfs")
"$venv/bin/cosfs-emulator" --root "$state/data" --port 0 --bucket "$bucket" \
    --credentials-file "$state/passwd-cosfs" >"$state/emulator.out" 2>"$state/emulator.log" &
echo $! >"$state/emulator.pid"
for _ in $(seq 100); do
    grep -q '^listening on ' "$state/emulator.out" 2>/dev/null && break
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$state/emulator.out")
if [ -z "$url" ]; then
    echo "quickstart: the emulator did not start; see $state/emulator.log" >&2
    exit 1
fi

# 4. The mount: the command returns once the bucket is mounted.
unmount
"$venv/bin/cosfs" "$bucket" "$mountpoint" \
    -o "endpoint=$url,passwd_file=$state/passwd-cosfs,cache_dir=$state/cache,logfile=$state/cosfs.log"

# 5. Use it.
cp "$repo/README.md" "$mountpoint/"
mkdir -p "$mountpoint/docs"
cp "$repo"/docs/*.md "$mountpoint/docs/"
echo
echo "cosfs mounted bucket $bucket (cosfs-emulator at $url) on $mountpoint:"
ls -l "$mountpoint" "$mountpoint/docs"
cat <<EOF

Try it:    cp -r /etc/default $mountpoint/   ls -l $mountpoint   rsync -a /etc/default/ $mountpoint/copy/
Requests:  curl -s $url/-/admin/stats     (what each operation cost the emulator)
Logs:      $state/cosfs.log (cosfs), $state/emulator.log (emulator)
Stop:      $0 stop
EOF
