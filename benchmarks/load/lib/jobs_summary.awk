# jobs_summary.awk: the medians over the rounds of jobs.sh's runs, per phase, and the ratio of the saturated to the
# idle p99 of GET /plaintext.
#
#   awk -v medians=FILE -f stats.awk -f jobs_summary.awk RUNS.csv
#
# RUNS.csv is jobs.sh's raw CSV (header row first, one row per run). Failed runs (no result) are left out of the
# medians. Writes one row per phase to FILE (CSV), with p99_vs_idle (the phase's median p99 over the idle phase's)
# in the GET phases, and prints a table.

BEGIN {
  FS = ","
  OFMT = "%.3f"  # medians in the CSV: never an exponent
  metric_count = split("rps p50_us p99_us cpu_us_per_req io_thread_cpu_pct worker_cpu_pct non_2xx other_on_io_cpu_pct", metric, " ")
  phase_count = split("submit idle saturated", phase, " ")
}

NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
$col["status"] == "failed" { next }
{
  key = $col["phase"]
  n = ++measured[key]
  for (m = 1; m <= metric_count; m++) value[key, metric[m], n] = $col[metric[m]]
}

END {
  printf "phase,runs" > medians
  for (m = 1; m <= metric_count; m++) printf ",%s", metric[m] > medians
  printf ",p99_vs_idle\n" > medians
  for (p = 1; p <= phase_count; p++)
    for (m = 1; m <= metric_count; m++) med[phase[p], metric[m]] = median(phase[p], metric[m])
  for (p = 1; p <= phase_count; p++) {
    key = phase[p]
    printf "%s,%d", key, measured[key] > medians
    for (m = 1; m <= metric_count; m++) printf ",%s", med[key, metric[m]] > medians
    printf ",%s\n", (key == "submit" ? "" : ratio(med[key, "p99_us"], med["idle", "p99_us"])) > medians
    printf "  %-10s %8s req/s  p50 %9s  p99 %9s  %9s CPU/req  I/O thread %4s  workers %4s%s\n", key,
           show(med[key, "rps"], "%.0f"), ms(med[key, "p50_us"]), ms(med[key, "p99_us"]),
           show(med[key, "cpu_us_per_req"], "%.2f us"), show(med[key, "io_thread_cpu_pct"], "%.0f%%"),
           show(med[key, "worker_cpu_pct"], "%.0f%%"),
           (med[key, "non_2xx"] > 0 ? sprintf("  refused (503) %.0f", med[key, "non_2xx"]) : "")
  }
  r = ratio(med["saturated", "p99_us"], med["idle", "p99_us"])
  printf "  GET /plaintext p99, saturated / idle: %s (target: at most 2)%s\n", (r == "" ? "n/a" : r),
         (r != "" && r > 2 ? ": ABOVE THE TARGET (a measurement, not a failure: see the README)" : "")
}

function ms(us) { return us == "" ? "n/a" : sprintf("%.3f ms", us / 1000) }
