#!/bin/sh
# Rebuild the ELF test objects with Debian's clang (14):
#   apt-get install -y clang llvm libbpf-dev linux-libc-dev
# The objects are committed so the tests need no compiler.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
ARCH_INC=/usr/include/$(uname -m)-linux-gnu
for src in *.c; do
	obj=${src%.c}.o
	"$CLANG" -target bpf -O2 -g -mcpu=v3 -I"$ARCH_INC" -Wall -Werror -c "$src" -o "$obj"
	echo "built $obj"
done
