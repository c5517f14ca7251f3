#!/usr/bin/env bash
# Make WordNet 3.0 readable by NLTK without nltk.download (which cannot reach its server here).
#
#   tools/install_wordnet.sh [NLTK_DATA_DIR]     (default: .nltk_data in the project root)
#
# Debian's wordnet-base and wordnet-sense-index hold the dictionary files; NLTK wants them
# under <NLTK_DATA_DIR>/corpora/wordnet/ together with a `lexnames` file, which Debian ships
# only as the man page lexnames.5WN.gz. Safe to run again: it installs the packages only
# when missing and rebuilds the folder only when a file is missing or out of date.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nltk_data="${1:-$project_root/.nltk_data}"
wordnet_src=/usr/share/wordnet
lexnames_man=/usr/share/man/man5/lexnames.5WN.gz
packages=(wordnet-base wordnet-sense-index)

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for package in "${packages[@]}"; do
    package_installed "$package" || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        echo "install_wordnet: ${missing[*]} missing and neither root nor sudo: install them with" >&2
        echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    echo "install_wordnet: installing ${missing[*]}"
    # A fresh machine may have no package lists yet: update once if the first try fails.
    apt_install=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
        --no-install-recommends "${missing[@]}")
    if ! "${apt_install[@]}"; then
        "${as_root[@]}" apt-get update -q
        "${apt_install[@]}"
    fi
fi

target="$nltk_data/corpora/wordnet"
mkdir -p "$target"
for source in "$wordnet_src"/*; do
    [[ -f $source ]] || continue
    destination="$target/$(basename "$source")"
    if [[ ! -f $destination || $source -nt $destination ]]; then
        cp -p "$source" "$destination"
    fi
done

# lexnames: "NN<TAB>name<TAB>category", category 1 noun, 2 verb, 3 adjective, 4 adverb.
write_lexnames() {
    awk -F'\t' '
        /^[0-9][0-9]\t[a-z]+\.[A-Za-z]+/ {
            name = $2
            gsub(/[ \t]+/, "", name)
            split(name, parts, ".")
            category = (parts[1] == "noun") ? 1 : (parts[1] == "verb") ? 2 : (parts[1] == "adj") ? 3 : 4
            printf "%s\t%s\t%d\n", $1, name, category
        }'
}
lexnames="$target/lexnames"
if [[ ! -s $lexnames || ($(wc -l <"$lexnames") -ne 45) ]]; then
    if [[ -f $lexnames_man ]]; then
        zcat "$lexnames_man" | write_lexnames >"$lexnames.tmp"
    else
        # Images that exclude man pages from dpkg lack the man page: the 45 WordNet 3.0
        # lexicographer files are fixed, so they are listed here.
        names="adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact
            noun.attribute noun.body noun.cognition noun.communication noun.event noun.feeling
            noun.food noun.group noun.location noun.motive noun.object noun.person
            noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation
            noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition
            verb.communication verb.competition verb.consumption verb.contact verb.creation
            verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative
            verb.weather adj.ppl"
        number=0
        for name in $names; do
            printf '%02d\t%s\n' "$number" "$name"
            number=$((number + 1))
        done | write_lexnames >"$lexnames.tmp"
    fi
    if [[ $(wc -l <"$lexnames.tmp") -ne 45 ]]; then
        echo "install_wordnet: expected 45 lexicographer files, got $(wc -l <"$lexnames.tmp")" >&2
        rm -f "$lexnames.tmp"
        exit 1
    fi
    mv "$lexnames.tmp" "$lexnames"
fi

for required in lexnames index.sense index.noun data.noun verb.exc; do
    [[ -s $target/$required ]] || {
        echo "install_wordnet: $target/$required is missing" >&2
        exit 1
    }
done
echo "install_wordnet: WordNet for NLTK in $target (set NLTK_DATA=$nltk_data to use it elsewhere)"
