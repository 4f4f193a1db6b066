# push_summary.awk: the medians over the rounds of ws.sh's and sse.sh's runs, and their ratios to the peers.
#
#   awk -v medians=FILE -v bases="beast node" -v unit="msg" -f stats.awk -f push_summary.awk RUNS.csv
#
# RUNS.csv has a header row and one row per run with at least the columns scenario, description, server,
# status, rate, p50_us, p99_us, cpu_us_per_msg, server_cpu_pct, client_cpu_pct and other_cpu_pct. Failed runs
# (status "failed": no result) are left out of the medians; runs with errors are kept and counted in the "ok"
# column. Writes one row per scenario and server to FILE (CSV) and prints a table per scenario, with the
# ratios of each server's medians to those of every server named in `bases`: rate (above 1: more messages
# per second than that peer) and CPU per message (above 1: more CPU for the same work).

BEGIN {
  FS = ","
  OFS = ","
  OFMT = "%.3f"
  metric_count = split("rate p50_us p99_us cpu_us_per_msg server_cpu_pct client_cpu_pct other_cpu_pct", metric, " ")
  base_count = split(bases, base, " ")
}

NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }

{
  scenario = $col["scenario"]; server = $col["server"]; key = scenario SUBSEP server
  if (!(scenario in scenario_seen)) {
    scenario_seen[scenario] = 1
    scenario_list[++scenario_total] = scenario
    description[scenario] = $col["description"]
  }
  if (!(key in runs)) server_of[scenario, ++server_total[scenario]] = server
  runs[key]++
  if ($col["status"] == "failed") next
  if ($col["status"] == "ok") ok[key]++
  n = ++measured[key]
  for (m = 1; m <= metric_count; m++) value[key, metric[m], n] = $col[metric[m]]
}

END {
  header = "scenario,description,server,rounds,ok_rounds,rate,p50_us,p99_us,cpu_us_per_msg,server_cpu_pct," \
           "client_cpu_pct,other_cpu_pct"
  for (b = 1; b <= base_count; b++) header = header ",rate_vs_" base[b] ",cpu_per_msg_vs_" base[b]
  print header > medians
  for (s = 1; s <= scenario_total; s++) {
    scenario = scenario_list[s]
    for (v = 1; v <= server_total[scenario]; v++) {
      key = scenario SUBSEP server_of[scenario, v]
      for (m = 1; m <= metric_count; m++) med[key, metric[m]] = measured[key] ? median(key, metric[m]) : ""
    }
    printf "\n%s: %s\n", scenario, description[scenario]
    line = sprintf("  %-12s %9s %8s %8s %9s %7s %7s %7s %5s |", "server", unit "/s", "p50 ms", "p99 ms",
                   "CPU us/" unit, "srv CPU", "cli CPU", "other", "ok")
    for (b = 1; b <= base_count; b++) line = line sprintf(" %6s %7s", unit "/s", "CPU/" unit)
    print line "  (ratios to " bases ")"
    for (v = 1; v <= server_total[scenario]; v++) {
      server = server_of[scenario, v]; key = scenario SUBSEP server
      line = sprintf("  %-12s %9s %8s %8s %9s %7s %7s %7s %5s |", server, show(med[key, "rate"], "%.0f"),
                     show(med[key, "p50_us"] == "" ? "" : med[key, "p50_us"] / 1000, "%.2f"),
                     show(med[key, "p99_us"] == "" ? "" : med[key, "p99_us"] / 1000, "%.2f"),
                     show(med[key, "cpu_us_per_msg"], "%.2f"), show(med[key, "server_cpu_pct"], "%.0f%%"),
                     show(med[key, "client_cpu_pct"], "%.0f%%"), show(clamp(med[key, "other_cpu_pct"]), "%.0f%%"),
                     (ok[key] + 0) "/" runs[key])
      row = scenario OFS description[scenario] OFS server OFS runs[key] OFS ok[key] + 0
      for (m = 1; m <= metric_count; m++) row = row OFS med[key, metric[m]]
      for (b = 1; b <= base_count; b++) {
        other = scenario SUBSEP base[b]
        has_base = (other in runs) && measured[other]
        rate_ratio = has_base ? ratio(med[key, "rate"], med[other, "rate"]) : ""
        cpu_ratio = has_base ? ratio(med[key, "cpu_us_per_msg"], med[other, "cpu_us_per_msg"]) : ""
        line = line sprintf(" %6s %7s", show(rate_ratio, "%s"), show(cpu_ratio, "%s"))
        row = row OFS rate_ratio OFS cpu_ratio
      }
      print line
      print row > medians
      if (med[key, "other_cpu_pct"] > busiest) busiest = med[key, "other_cpu_pct"]
    }
  }
  if (busiest > 25)
    printf "\nWarning: other work used up to %.0f%% of the two benchmark CPUs (median of a scenario): rates\n" \
           "and latency are unreliable, CPU per message less so. Rerun on a quieter machine.\n", busiest
}
