#!/usr/bin/env bash
# Installs the peers that `npm run bench` compares Lockstep with: Debian's Redis and etcd servers.
# Not part of CI (the bench is not a test); run once on a fresh machine, as root.
# The bench starts and stops its own instances on free loopback ports; the services Debian may
# start on install are stopped here so they neither hold ports nor load the cores.
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server etcd-server >/dev/null
for svc in redis-server etcd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc"; fi
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
echo "redis-server: $(redis-server --version)"
echo "etcd: $(etcd --version | head -1)"
