#!/usr/bin/env bash
# rootfs.sh BINARY LICENSES DEST: lays out hawser's image filesystem in DEST
# (emptied first), for hack/image.sh and the Dockerfile alike:
#   /usr/local/bin/hawser                   the release binary
#   /lib/..., /lib64/ld-linux-x86-64.so.2   the shared libraries it links
#                                           (as `ldd` names them: glibc, libgcc_s)
#   /etc/ssl/certs/ca-certificates.crt      Debian's CA bundle, for AWS's endpoints
#   /etc/passwd, /etc/group                 root and nonroot (65532), the user it runs as
#   /usr/share/doc/hawser/                  LICENSE and THIRD-PARTY-LICENSES.txt
#   /usr/share/doc/<package>/copyright      Debian's notices for the libraries
#                                           and the CA bundle
# Nothing else: no shell, no package manager. hawser writes no files (its
# self-managed certificates live in memory and in a Secret), so there is
# no /tmp; the chart's root filesystem is read-only.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BINARY LICENSES DEST" >&2; exit 2; }
bin=$1 licenses=$2 dest=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || { echo "$ca missing: install Debian's ca-certificates" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest"
install -D -m 0755 "$bin" "$dest/usr/local/bin/hawser"

# Each library under the path the dynamic loader looks for it, as a file
# (symbolic links resolved); none for a static binary.
libs=$(ldd "$bin" 2>&1 | awk '
  /not found/ { print "MISSING " $1; next }
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }') || true
if grep -q '^MISSING' <<<"$libs"; then
  echo "$bin links libraries this machine lacks: $libs" >&2
  exit 1
fi
for lib in $libs; do
  install -D -m 0755 "$(readlink -f "$lib")" "$dest$lib"
done

install -D -m 0644 "$ca" "$dest$ca"
install -d -m 0755 "$dest/etc"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$dest/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$dest/etc/group"
chmod 0644 "$dest/etc/passwd" "$dest/etc/group"

install -D -m 0644 "$repo/LICENSE" "$dest/usr/share/doc/hawser/LICENSE"
install -D -m 0644 "$licenses" "$dest/usr/share/doc/hawser/THIRD-PARTY-LICENSES.txt"
# The Debian packages the libraries and the bundle come from, and their
# licenses (glibc: LGPL; libgcc: GCC runtime exception; CA bundle: MPL-2.0).
packages=ca-certificates
for lib in $libs; do
  owner=$( (dpkg-query -S "$lib" || dpkg-query -S "$(readlink -f "$lib")") 2>/dev/null | head -1) || true
  [ -n "$owner" ] || { echo "no Debian package owns $lib: its license is unknown" >&2; exit 1; }
  packages+=" ${owner%%:*}"
done
for p in $(tr ' ' '\n' <<<"$packages" | sort -u); do
  install -D -m 0644 "/usr/share/doc/$p/copyright" "$dest/usr/share/doc/$p/copyright"
done
find "$dest" -type d -exec chmod 0755 {} +
