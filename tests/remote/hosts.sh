#!/usr/bin/env bash
# Test hosts for `spawn process ... on HOST`, on this one machine: each host
# is a network namespace joined to this one by a veth pair, running Debian's
# sshd with keys made for the run. Traffic goes only to those addresses.
#
#   hosts.sh up DIR N     make hosts h1 and h2 (and the fault hosts below);
#                         DIR gets keys, sshd configs and ssh_config;
#                         N (0-249) keeps the names and subnets of
#                         concurrent runs apart
#   hosts.sh down DIR N   end every process in the hosts and remove them
#
# Then: CONC_SSH="ssh -F DIR/ssh_config" conc script.conc
#   h1, h2    root on each host, key and host key known
#   chatty    h2 through an sshd whose forced command prints a banner first
#   stranger  h1, but no known host key
#   refused   h1, with a key it does not accept
# Needs root, iproute2 and /usr/sbin/sshd (Debian's openssh-server).
set -euo pipefail

cmd=${1:?up or down}
dir=${2:?a folder}
n=${3:?a number}

ns() { echo "conc-$n-h$1"; }
ip_of() { echo "10.$((230 + $1)).$n.2"; }
gw_of() { echo "10.$((230 + $1)).$n.1"; }

down() {
    for h in 1 2; do
        local name
        name=$(ns "$h")
        if ip netns list | grep -qw "$name"; then
            for pid in $(ip netns pids "$name"); do
                kill -9 "$pid" 2>/dev/null || true
            done
            ip netns del "$name" || true
        fi
        ip link del "cr$n-$h" 2>/dev/null || true
    done
}

if [ "$cmd" = down ]; then
    down
    exit 0
fi

mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
down
rm -f "$dir"/id "$dir"/id.pub "$dir"/other "$dir"/other.pub "$dir"/hostkey "$dir"/hostkey.pub
ssh-keygen -q -t ed25519 -N '' -f "$dir/id"
ssh-keygen -q -t ed25519 -N '' -f "$dir/other"
ssh-keygen -q -t ed25519 -N '' -f "$dir/hostkey"
cp "$dir/id.pub" "$dir/authorized_keys"
: > "$dir/known_hosts"

sshd_config() {
    cat <<CONF
ListenAddress $1
Port $2
HostKey $dir/hostkey
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
CONF
}

# A host is a fresh machine: root's home there is an empty folder (this
# machine's shell start-up files stay out of the measurements).
mkdir -p "$dir/home"
: > "$dir/home/.bashrc"
sshd_in() {
    ip netns exec "$1" unshare -m --propagation private \
        sh -c 'mount --bind "$0" /root && exec /usr/sbin/sshd -f "$1" -E "$2"' "$dir/home" "$2" "$3"
}

for h in 1 2; do
    name=$(ns "$h")
    ip netns add "$name"
    ip link add "cr$n-$h" type veth peer name eth0 netns "$name"
    ip addr add "$(gw_of "$h")/24" dev "cr$n-$h"
    ip link set "cr$n-$h" up
    ip -n "$name" addr add "$(ip_of "$h")/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
    sshd_config "$(ip_of "$h")" 22 > "$dir/sshd-h$h.conf"
    sshd_in "$name" "$dir/sshd-h$h.conf" "$dir/sshd-h$h.log"
    echo "$(ip_of "$h") $(cat "$dir/hostkey.pub")" >> "$dir/known_hosts"
done
# The chatty host: a forced command that greets before it runs anything.
{
    sshd_config "$(ip_of 2)" 2222
    echo "ForceCommand echo 'Welcome to h2!'; eval \"\$SSH_ORIGINAL_COMMAND\""
} > "$dir/sshd-chatty.conf"
sshd_in "$(ns 2)" "$dir/sshd-chatty.conf" "$dir/sshd-chatty.log"
echo "[$(ip_of 2)]:2222 $(cat "$dir/hostkey.pub")" >> "$dir/known_hosts"

cat > "$dir/ssh_config" <<CONF
Host h1
    HostName $(ip_of 1)
    IdentityFile $dir/id
Host h2
    HostName $(ip_of 2)
    IdentityFile $dir/id
Host chatty
    HostName $(ip_of 2)
    Port 2222
    IdentityFile $dir/id
Host stranger
    HostName $(ip_of 1)
    IdentityFile $dir/id
    UserKnownHostsFile /dev/null
Host refused
    HostName $(ip_of 1)
    IdentityFile $dir/other
Host *
    User root
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    GlobalKnownHostsFile /dev/null
CONF

# Ready once each sshd answers.
for h in 1 2; do
    for _ in $(seq 100); do
        if ssh -F "$dir/ssh_config" -o BatchMode=yes -o ConnectTimeout=2 "h$h" true 2>/dev/null; then
            continue 2
        fi
        sleep 0.1
    done
    echo "host h$h did not come up; see $dir/sshd-h$h.log" >&2
    exit 1
done
