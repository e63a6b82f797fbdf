#!/usr/bin/env bash
# The real servers the tests start privately on loopback, and the headless browser the
# web page is tested in (Chromium; tests/collector/test_web_ui.py): Debian's packages.
set -euo pipefail
need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
# The router poll is tested against a private net-snmp agent; the bandwidth test's accuracy
# on links shaped with tc tbf in network namespaces (iproute2); the test server's recipe
# in deploy/nginx is tried with a real nginx.
[ -x /usr/sbin/snmpd ] || need+=(snmpd)
command -v tc >/dev/null || need+=(iproute2)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
# TLS tests make their certificates with openssl; the page's script is syntax-checked with node.
command -v openssl >/dev/null || need+=(openssl)
command -v node >/dev/null || need+=(nodejs)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "The tests need these Debian packages: ${need[*]}" >&2
  echo "Install them once: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' own services from starting: tests run private instances.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
