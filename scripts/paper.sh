#!/usr/bin/env bash
# The paper's comparison (every method of its table 1, same teacher, student and budget) on a GPU machine, in one
# command: set-up, then `kidsql bench` with each recipe in recipes/ on your Spider or BIRD folder.
#
#   bash scripts/paper.sh /data/spider                       # all recipes, models from the hub, out: runs/paper/<recipe>
#   RECIPES=recipes/qwen1.5-0.5b-from-4b.yaml bash scripts/paper.sh /data/spider runs/qwen \
#       --teacher /models/qwen1.5-4b-spider --teacher_steps 0 --student /models/Qwen1.5-0.5B   # local models
#
# Options after the output folder go to every `kidsql bench` call and override the recipe (e.g. --splits dev,
# --no_use_evidence for BIRD without knowledge, --train_options gradient_checkpointing=true). A killed run
# resumes where it stopped when the same command is run again.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: bash scripts/paper.sh DATA_DIR [OUT_DIR] [kidsql bench options...]" >&2
    exit 2
fi
data=$1
out=${2:-runs/paper}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    # shellcheck disable=SC1091
    source "$here/.venv/bin/activate"
fi
for recipe in ${RECIPES:-"$here"/recipes/*.yaml}; do
    name=$(basename "$recipe" .yaml)
    echo "== $name: kidsql bench --config $recipe --data $data --out $out/$name $*"
    kidsql bench --config "$recipe" --data "$data" --out "$out/$name" "$@"
done
