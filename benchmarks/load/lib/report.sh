# shellcheck shell=bash
# Writing results of the load benchmarks as JSON (sourced by http.sh and memory.sh).

# sb_json_string TEXT: TEXT as a JSON string (quotes and backslashes escaped, control characters as spaces).
sb_json_string() {
  local text=${1//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//[$'\t\n\r']/ }
  printf '"%s"' "$text"
}

# sb_csv_to_json FILE: the rows of a CSV file with a header row (no quoted fields) as a JSON array of
# objects; numbers stay numbers, empty fields become null, anything else a string.
sb_csv_to_json() {
  awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; fields = NF; printf "["; next }
    {
      printf "%s\n    {", (NR > 2 ? "," : "")
      for (i = 1; i <= fields; i++) {
        v = $i
        if (v == "") v = "null"
        else if (v !~ /^-?[0-9]+(\.[0-9]+)?$/) { gsub(/\\/, "\\\\", v); gsub(/"/, "\\\"", v); v = "\"" v "\"" }
        printf "%s\"%s\": %s", (i > 1 ? ", " : ""), name[i], v
      }
      printf "}"
    }
    END { if (NR > 1) printf "\n  "; if (NR == 0) printf "["; printf "]" }' "$1"
}
