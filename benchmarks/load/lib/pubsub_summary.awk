# pubsub_summary.awk: the medians over the rounds of pubsub.sh's runs, and their ratios to redis-server's.
#
#   awk -v medians=FILE -v rounds=N -f pubsub_summary.awk RUNS.csv
#
# RUNS.csv is pubsub.sh's raw CSV (header row first, one row per run). Writes one row per scenario and server
# to FILE (CSV) and prints a table per scenario. Failed runs are left out of the medians. Ratios are of medians,
# taken when redis ran in that scenario: above 1 means more operations/s or more server CPU per operation.

BEGIN {
  FS = ","
  OFS = ","
  OFMT = "%.3f"
  metric_count = split("rate cpu_us_per_op server_cpu_pct other_cpu_pct", metric, " ")
}

NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }

{
  scenario = $col["scenario"]; server = $col["server"]; key = scenario SUBSEP server
  if (!(scenario in seen)) { seen[scenario] = 1; scenarios[++scenario_total] = scenario; what[scenario] = $col["unit"] }
  if (!(key in runs)) server_of[scenario, ++server_total[scenario]] = server
  runs[key]++
  if ($col["status"] != "ok") next
  n = ++measured[key]
  for (m = 1; m <= metric_count; m++) value[key, metric[m], n] = $col[metric[m]]
}

function median(key, name,    i, j, k, t, sorted) {
  k = 0
  for (i = 1; i <= measured[key]; i++) if (value[key, name, i] != "") sorted[++k] = value[key, name, i] + 0
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

END {
  print "scenario,unit,server,rounds,ok_rounds,rate,cpu_us_per_op,server_cpu_pct,other_cpu_pct,rate_vs_redis," \
        "cpu_per_op_vs_redis" > medians
  for (s = 1; s <= scenario_total; s++) {
    scenario = scenarios[s]
    base = scenario SUBSEP "redis"
    printf "\n%s: %s per second; medians of %d round(s)\n", scenario, what[scenario], rounds
    printf "  %-8s %12s %13s %8s %7s %5s | %7s %10s  (ratio to redis)\n", "server", what[scenario] "/s",
           "CPU us/" what[scenario], "srv CPU", "other", "ok", "rate", "CPU/op"
    for (v = 1; v <= server_total[scenario]; v++) {
      server = server_of[scenario, v]; key = scenario SUBSEP server
      for (m = 1; m <= metric_count; m++) med[key, metric[m]] = measured[key] ? median(key, metric[m]) : ""
    }
    for (v = 1; v <= server_total[scenario]; v++) {
      server = server_of[scenario, v]; key = scenario SUBSEP server
      has_base = (base in runs) && measured[base]
      rate_ratio = has_base ? ratio(med[key, "rate"], med[base, "rate"]) : ""
      cpu_ratio = has_base ? ratio(med[key, "cpu_us_per_op"], med[base, "cpu_us_per_op"]) : ""
      printf "  %-8s %12s %13s %8s %7s %5s | %7s %10s\n", server, show(med[key, "rate"], "%.0f"),
             show(med[key, "cpu_us_per_op"], "%.3f"), show(med[key, "server_cpu_pct"], "%.0f%%"),
             show(med[key, "other_cpu_pct"] < 0 ? 0 : med[key, "other_cpu_pct"], "%.0f%%"),
             (measured[key] + 0) "/" runs[key], show(rate_ratio, "%s"), show(cpu_ratio, "%s")
      print scenario, what[scenario], server, runs[key], measured[key] + 0, med[key, "rate"], med[key, "cpu_us_per_op"],
            med[key, "server_cpu_pct"], med[key, "other_cpu_pct"], rate_ratio, cpu_ratio > medians
    }
  }
}
