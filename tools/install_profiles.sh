#!/usr/bin/env bash
# Make `snakemake --profile slurm` and `snakemake --profile local` work from any directory.
#
# Snakemake 9 looks a bare profile name up in the current directory, then in the user's config directory
# ($XDG_CONFIG_HOME/snakemake, default ~/.config/snakemake), then in the site directory (/etc/xdg/snakemake).
# This script links this repository's profiles/slurm and profiles/local there as `slurm` and `local`.
#
#   tools/install_profiles.sh          symlinks (the default): the profiles follow this checkout
#   tools/install_profiles.sh --copy   copies: edit account/partition in your copy without touching the repo
#
# Idempotent: an existing link to the same folder (or an identical copy) is left alone. A different profile
# of the same name (your own folder or file, or a link elsewhere) is never replaced: the script warns and
# skips it (exit status 0, so `make setup` goes on; --strict: status 1).
set -euo pipefail

mode=link
strict=0
for arg in "$@"; do
    case "$arg" in
        --copy) mode=copy ;;
        --strict) strict=1 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--copy] [--strict]" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
dest_dir="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
mkdir -p "$dest_dir"

skipped=0
for name in slurm local; do
    src="$repo/profiles/$name"
    dest="$dest_dir/$name"
    if [ ! -f "$src/profile.yaml" ]; then
        echo "error: $src/profile.yaml is missing" >&2
        exit 2
    fi
    if [ -L "$dest" ] && [ ! -e "$dest" ]; then
        # a dangling link (e.g. to a deleted checkout) protects nothing: replace it
        echo "replacing dangling link $dest -> $(readlink "$dest")"
        rm -f "$dest"
    fi
    if [ -L "$dest" ]; then
        target="$(readlink -f "$dest" || true)"
        if [ "$target" = "$(readlink -f "$src")" ]; then
            echo "ok: $dest -> $src (already linked)"
            continue
        fi
        echo "warning: $dest is a link to ${target:-a missing path}, not to $src; left unchanged" \
            "(remove it and rerun to install this repository's profile)" >&2
        skipped=1
        continue
    fi
    if [ -e "$dest" ]; then
        if [ -d "$dest" ] && diff -rq "$src" "$dest" >/dev/null 2>&1; then
            echo "ok: $dest is an identical copy of $src"
            continue
        fi
        echo "warning: $dest exists and differs from $src; left unchanged" \
            "(compare with: diff -r $src $dest)" >&2
        skipped=1
        continue
    fi
    if [ "$mode" = copy ]; then
        cp -R "$src" "$dest"
        echo "copied: $src -> $dest"
    else
        ln -s "$src" "$dest"
        echo "linked: $dest -> $src"
    fi
done
if [ "$skipped" = 1 ] && [ "$strict" = 1 ]; then
    exit 1
fi
