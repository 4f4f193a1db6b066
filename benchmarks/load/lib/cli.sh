# shellcheck shell=bash
# The command-line helpers of the load scripts: --help prints the script's header comment (from its second line
# to `set -euo pipefail`), a usage error names the script and exits with status 2, and numeric options are
# checked. Sourced right after the script sets `load_dir`; the script is "$0".

usage() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"; }
usage_error() { echo "$(basename "$0"): $1 (see --help)" >&2; exit 2; }
number() { [[ $2 =~ ^[0-9]+$ ]] || usage_error "$1 needs a whole number, got '$2'"; echo "$2"; }
