#!/bin/sh
# The download files of the legacy speedtest protocol for deploy/nginx/speedtest.conf:
# ROOT/speedtest/random{N}x{N}.jpg of N*N*2 random bytes (the collector's own test server
# uses the same sizes), for the legacy N (or the N given after ROOT).
#   make-speedtest-files.sh /var/www/speedtest [N ...]
set -eu
root=${1:?usage: make-speedtest-files.sh ROOT [N ...]}
shift
sizes=${*:-350 500 750 1000 1500 2000 2500 3000 3500 4000}
mkdir -p "$root/speedtest"
for n in $sizes; do
    head -c $((n * n * 2)) /dev/urandom > "$root/speedtest/random${n}x${n}.jpg.tmp"
    mv "$root/speedtest/random${n}x${n}.jpg.tmp" "$root/speedtest/random${n}x${n}.jpg"
done
echo "made $(echo $sizes | wc -w) file(s) in $root/speedtest"
