# summarize.awk: the medians over the rounds of http.sh's runs, and their ratios to nginx's medians.
#
#   awk -v medians=FILE -v rounds=N -v duration=S -f stats.awk -f summarize.awk RUNS.csv
#
# RUNS.csv is http.sh's raw CSV (header row first, one row per run). Writes one row per scenario and server
# to FILE (CSV) and prints a table per scenario. Failed runs (wrk gave no result) are left out of the
# medians; runs with errors are kept and counted in the "ok" column. Ratios are of medians, taken only when
# nginx ran in that scenario: above 1 means more requests/s, more CPU per request or a longer p99 than nginx.

BEGIN {
  FS = ","
  OFS = ","
  OFMT = "%.3f"  # medians and ratios in the CSV: never an exponent, whatever the magnitude
  metric_count = split("rps p50_us p99_us cpu_us_per_req server_cpu_pct wrk_cpu_pct other_cpu_pct", metric, " ")
}

NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }

{
  scenario = $col["scenario"]; server = $col["server"]; key = scenario SUBSEP server
  if (!(scenario in scenario_seen)) {
    scenario_seen[scenario] = 1
    scenario_list[++scenario_total] = scenario
    connections[scenario] = $col["connections"]
    pipeline[scenario] = $col["pipeline"]
  }
  if (!(key in runs)) server_of[scenario, ++server_total[scenario]] = server
  runs[key]++
  if ($col["status"] == "failed") next
  if ($col["status"] == "ok") ok[key]++
  n = ++measured[key]
  for (m = 1; m <= metric_count; m++) value[key, metric[m], n] = $col[metric[m]]
}

END {
  print "scenario,connections,pipeline,server,rounds,ok_rounds,rps,p50_us,p99_us,cpu_us_per_req," \
        "server_cpu_pct,wrk_cpu_pct,other_cpu_pct,rps_vs_nginx,cpu_per_req_vs_nginx,p99_vs_nginx" > medians
  for (s = 1; s <= scenario_total; s++) {
    scenario = scenario_list[s]
    for (v = 1; v <= server_total[scenario]; v++) {
      key = scenario SUBSEP server_of[scenario, v]
      for (m = 1; m <= metric_count; m++) med[key, metric[m]] = measured[key] ? median(key, metric[m]) : ""
    }
    base = scenario SUBSEP "nginx"
    printf "\n%s: %d connections, keep-alive, %s; medians of %d round(s) of %d s\n", scenario,
           connections[scenario], (pipeline[scenario] > 1 ? pipeline[scenario] "-deep pipelining" : "no pipelining"),
           rounds, duration
    printf "  %-15s %9s %7s %7s %10s %7s %7s %7s %5s | %7s %7s %7s  (ratio to nginx)\n", "server", "req/s",
           "p50 ms", "p99 ms", "CPU us/req", "srv CPU", "wrk CPU", "other", "ok", "req/s", "CPU/req", "p99"
    for (v = 1; v <= server_total[scenario]; v++) {
      server = server_of[scenario, v]; key = scenario SUBSEP server
      has_base = (base in runs) && measured[base]
      rps_ratio = has_base ? ratio(med[key, "rps"], med[base, "rps"]) : ""
      cpu_ratio = has_base ? ratio(med[key, "cpu_us_per_req"], med[base, "cpu_us_per_req"]) : ""
      p99_ratio = has_base ? ratio(med[key, "p99_us"], med[base, "p99_us"]) : ""
      printf "  %-15s %9s %7s %7s %10s %7s %7s %7s %5s | %7s %7s %7s\n", server,
             show(med[key, "rps"], "%.0f"), show(med[key, "p50_us"] == "" ? "" : med[key, "p50_us"] / 1000, "%.2f"),
             show(med[key, "p99_us"] == "" ? "" : med[key, "p99_us"] / 1000, "%.2f"),
             show(med[key, "cpu_us_per_req"], "%.2f"), show(med[key, "server_cpu_pct"], "%.0f%%"),
             show(med[key, "wrk_cpu_pct"], "%.0f%%"), show(clamp(med[key, "other_cpu_pct"]), "%.0f%%"),
             (ok[key] + 0) "/" runs[key],
             show(rps_ratio, "%s"), show(cpu_ratio, "%s"), show(p99_ratio, "%s")
      if (med[key, "other_cpu_pct"] > busiest) busiest = med[key, "other_cpu_pct"]
      print scenario, connections[scenario], pipeline[scenario], server, runs[key], ok[key] + 0,
            med[key, "rps"], med[key, "p50_us"], med[key, "p99_us"], med[key, "cpu_us_per_req"],
            med[key, "server_cpu_pct"], med[key, "wrk_cpu_pct"], med[key, "other_cpu_pct"], rps_ratio, cpu_ratio,
            p99_ratio > medians
    }
  }
  if (busiest > 25)
    printf "\nWarning: other work used up to %.0f%% of the two benchmark CPUs (median of a scenario): requests/s\n" \
           "and latency are unreliable, CPU per request less so. Rerun on a quieter machine.\n", busiest
}
