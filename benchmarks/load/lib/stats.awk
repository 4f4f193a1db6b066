# stats.awk: the functions the summaries of the load benchmarks share (summarize.awk for http.sh,
# push_summary.awk for ws.sh and sse.sh); given to awk first: awk -f stats.awk -f summarize.awk ...
#
# median() reads the caller's arrays measured[key] (how many runs of KEY were measured) and
# value[key, metric, n] (the metric's value in the n-th of them).

# The median of the non-empty values of one metric, or "" when there are none.
function median(key, name,    i, j, k, t, sorted) {
  k = 0
  for (i = 1; i <= measured[key]; i++)
    if (value[key, name, i] != "") sorted[++k] = value[key, name, i] + 0
  if (k == 0) return ""
  for (i = 2; i <= k; i++) {
    t = sorted[i]
    for (j = i - 1; j >= 1 && sorted[j] > t; j--) sorted[j + 1] = sorted[j]
    sorted[j + 1] = t
  }
  return (k % 2) ? sorted[(k + 1) / 2] : (sorted[k / 2] + sorted[k / 2 + 1]) / 2
}

function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "" : sprintf("%.2f", a / b) }
function show(x, format) { return x == "" ? "n/a" : sprintf(format, x) }
# "other" CPU is tick-sampled: a slightly negative estimate means none, and is shown as 0.
function clamp(x) { return (x == "" || x > 0) ? x : 0 }
