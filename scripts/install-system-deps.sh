#!/usr/bin/env bash
# Installs what tsvirt's build and tests need on Debian/Ubuntu beyond the npm
# registry: the assembler and compilers the CPU tests use, and QEMU's tools
# that judge our image formats, QEMU itself (the reference for QMP), and passt for user-mode networking. Also pnpm, when it is missing. Idempotent.
set -euo pipefail

packages=(nasm gcc libc6-dev qemu-utils cpio acpica-tools libzstd-dev e2fsprogs qemu-system-x86 passt)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "tsvirt needs Node.js 20.19 or newer (found: $(node --version 2>/dev/null || echo none)); see https://nodejs.org or NodeSource's Debian packages" >&2
  exit 1
fi

if ! command -v pnpm >/dev/null; then
  # corepack's download of pnpm fails its signature check on some machines; npm works.
  as_root npm install -g pnpm@10 >/dev/null
fi
echo "system dependencies ready: $(nasm -v | cut -d' ' -f1-3), $(qemu-img --version | head -1), pnpm $(pnpm --version)"
