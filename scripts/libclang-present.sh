#!/usr/bin/env bash
# Exits 0 when a libclang that RocksDB's build can use is installed, 1 otherwise.
#
# RocksDB's bindgen loads libclang through clang-sys, which looks for
# `libclang.so` and `libclang-<version>.so` (and, loading at run time, their
# `.so.<n>` forms), skipping `libclang-cpp.so.<n>`: that is another library,
# present on many machines without libclang-dev, so it must not count (a plain
# `grep libclang` over `ldconfig -p` matched it and the build then failed in
# clang-sys). Only the unversioned names count here: they come with
# libclang-dev, together with the clang headers bindgen also needs.
#
# It looks where clang-sys does: only $LIBCLANG_PATH when that is set; else
# `llvm-config --libdir`, /usr/local/llvm*/lib*, /usr/local/lib*{/*/*,/*,},
# /usr/lib*{/*/*,/*,}, and the paths in ld.so's cache (`ldconfig -p`).
#
# For tests: LIBCLANG_SEARCH_ROOT is put in front of every directory searched
# (llvm-config is then not asked), and LDCONFIG_LISTING names a file read
# instead of the output of `ldconfig -p`.
set -uo pipefail
shopt -s nullglob

root=${LIBCLANG_SEARCH_ROOT:-}

# Whether the file name (a path's last part) is one of the names that count.
counts() {
    local name=${1##*/}
    [[ $name != *-cpp.* ]] && [[ $name == libclang.so || $name == libclang-*.so ]]
}

# Whether one of the directories given holds a file whose name counts.
found_in() {
    local d f
    for d in "$@"; do
        [[ -d $d ]] || continue
        for f in "$d"/libclang.so "$d"/libclang-*.so; do
            [[ -e $f ]] && counts "$f" && return 0
        done
    done
    return 1
}

if [[ -n ${LIBCLANG_PATH:-} ]]; then
    if [[ -f $LIBCLANG_PATH ]]; then
        counts "$LIBCLANG_PATH"
        exit
    fi
    found_in "$LIBCLANG_PATH"
    exit
fi

dirs=()
if [[ -z $root ]] && command -v llvm-config >/dev/null 2>&1; then
    dirs+=("$(llvm-config --libdir)")
fi
dirs+=("$root"/usr/local/llvm*/lib* "$root"/usr/local/lib*/*/* "$root"/usr/local/lib*/* "$root"/usr/local/lib*)
dirs+=("$root"/usr/lib*/*/* "$root"/usr/lib*/* "$root"/usr/lib*)
found_in "${dirs[@]}" && exit 0

if [[ -n ${LDCONFIG_LISTING:-} ]]; then
    listing=$(cat "$LDCONFIG_LISTING")
else
    listing=$(ldconfig -p 2>/dev/null)
fi
while read -r line; do
    [[ $line == *" => "* ]] || continue
    counts "${line##* => }" && exit 0
done <<<"$listing"
exit 1
