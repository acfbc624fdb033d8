#!/bin/sh
# A stand-in for the Dockerfile's NODE_IMAGE (node:20-bookworm-slim) made from Debian packages and a
# Node install already on this host, for sites that cannot pull any base image:
#
#   scripts/base-image.sh node-base.tar [MIRROR…]
#   docker import node-base.tar local/node:20-bookworm-slim     # or: podman import
#   docker build --build-arg NODE_IMAGE=local/node:20-bookworm-slim .
#
# MIRROR: what mmdebstrap takes, e.g. an internal Debian mirror URL or an apt sources file
# (/etc/apt/sources.list.d/debian.sources); without one mmdebstrap uses its default mirror.
# NODE: the node binary to copy (default: the one on PATH); its npm is taken from the same install
# prefix (<prefix>/lib/node_modules/npm), laid out in /usr/local as the official node images do.
# NPM_CAFILE: a PEM bundle npm trusts instead of its built-in roots (a TLS-inspecting egress proxy, an
# npm mirror behind a private CA), written to npm's global config /usr/local/etc/npmrc.
# Needs root (or mmdebstrap's unshare mode) and the mmdebstrap package. The image's node and npm are
# tried in the chroot with an empty environment: the host's NODE_OPTIONS may name files it lacks.
set -eu

if [ $# -lt 1 ]; then
  echo "usage: $0 OUTPUT.tar [MIRROR…]" >&2
  exit 2
fi
out=$1
shift
# mmdebstrap picks its output format by the name: anything else would be a directory.
case $out in
  *.tar) ;;
  *) echo "$0: OUTPUT must end in .tar: $out" >&2; exit 2 ;;
esac

node=$(readlink -f "${NODE:-$(command -v node)}")
npm_dir=$(dirname "$(dirname "$node")")/lib/node_modules/npm
if [ ! -x "$node" ] || [ ! -f "$npm_dir/bin/npm-cli.js" ]; then
  echo "$0: need a node binary and its npm at $npm_dir (set NODE=/path/to/bin/node)" >&2
  exit 2
fi
# The Dockerfile runs `npm ci`; the Node versions package.json accepts start at 20.18.
if ! "$node" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=18)?0:1)'; then
  echo "$0: $node is Node $("$node" --version); the image needs >= 20.18" >&2
  exit 2
fi
export BASE_IMAGE_NODE="$node" BASE_IMAGE_NPM="$npm_dir" BASE_IMAGE_CAFILE="${NPM_CAFILE:-}"
if [ -n "$BASE_IMAGE_CAFILE" ] && ! grep -q 'BEGIN CERTIFICATE' "$BASE_IMAGE_CAFILE"; then
  echo "$0: NPM_CAFILE=$BASE_IMAGE_CAFILE holds no PEM certificate" >&2
  exit 2
fi

# minbase: Essential packages and apt. passwd for the Dockerfile's groupadd/useradd; libstdc++6 for
# node itself. Documentation and locales are left out, as in Debian's slim images.
exec mmdebstrap --variant=minbase --include=passwd,libstdc++6 \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook='install -D -m 0755 "$BASE_IMAGE_NODE" "$1/usr/local/bin/node"' \
  --customize-hook='mkdir -p "$1/usr/local/lib/node_modules" && cp -a "$BASE_IMAGE_NPM" "$1/usr/local/lib/node_modules/npm"' \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  --customize-hook='[ -z "$BASE_IMAGE_CAFILE" ] || { install -D -m 0644 "$BASE_IMAGE_CAFILE" "$1/usr/local/etc/npm-ca.pem" && echo cafile=/usr/local/etc/npm-ca.pem > "$1/usr/local/etc/npmrc"; }' \
  --customize-hook='chroot "$1" env -i PATH=/usr/local/bin:/usr/bin:/bin sh -c "node --version && npm --version"' \
  --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*' \
  bookworm "$out" "$@"
