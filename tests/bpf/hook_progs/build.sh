#!/bin/sh
# Rebuild the hook test object with Debian's clang (see ../progs/build.sh); the object is
# committed so the tests need no compiler.
set -eu
cd "$(dirname "$0")"
ARCH_INC=/usr/include/$(uname -m)-linux-gnu
${CLANG:-clang} -target bpf -O2 -g -mcpu=v3 -I"$ARCH_INC" -Wall -Werror -c hooks.c -o hooks.o
echo "built hooks.o"
