#!/usr/bin/env bash
# Prints the path of a built box of a recipe, building it first when the cache has none:
#
#   scripts/box-cache.sh debian-12        ->  /var/cache/vmenv/boxes/debian-12-<key>.box
#
# <key> (boxCacheKey in src/build/cache.ts) covers the recipe hash (the recipe folder
# and boxes/common) and the builder's sources (src/build, src/box/format.ts,
# src/box/metadata.ts): a changed recipe or builder builds afresh. Older files are left
# alone (others keep boxes there too). test/e2e/box-build.test.ts uses the same keys.
# Needs root (building does) and the built CLI (npm run build). VMENV_TEST_REBUILD=1
# always builds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
recipe=${1:?usage: scripts/box-cache.sh <recipe>}
[ -d "$root/boxes/$recipe" ] || { echo "box-cache: no recipe boxes/$recipe" >&2; exit 2; }
[ -f "$root/dist/build/cache.js" ] || { echo "box-cache: run 'npm run build' first" >&2; exit 2; }

cached=$(cd "$root" && node --input-type=module -e '
  const { BOX_CACHE_DIR, boxCacheKey, cachedBoxName } = await import(process.argv[1] + "/dist/build/cache.js");
  const { join } = await import("node:path");
  const recipe = process.argv[2];
  const { key } = await boxCacheKey(join(process.argv[1], "boxes", recipe), join(process.argv[1], "boxes", "common"), process.argv[1] + "/");
  console.log(join(BOX_CACHE_DIR, cachedBoxName(recipe, key)));
' "$root" "$recipe")

if [ "${VMENV_TEST_REBUILD:-0}" != 1 ] && [ -f "$cached" ]; then
  echo "$cached"
  exit 0
fi

dir=$(dirname "$cached")
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build-$recipe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
node "$root/bin/run.js" box build "$recipe" -o "$tmp/$recipe.box" >&2
mv -f "$tmp/$recipe.box" "$cached"
echo "$cached"
