#!/usr/bin/env bash
# summarize.sh [RAW.tsv]: Markdown tables of median [min-max] over the runs with status
# ok, per mode, target, size, sessions and N (default: results/raw.tsv).
# For MODE=inject rows it also prints, per size, the ratio of each system's median
# injection rate to Postfix's (and to postfix-hold's when that was measured), with the
# range from the least to the most favourable pairing of runs (min/max .. max/min).
# "noisy runs" counts runs in which other work took more than NOISY_PCT (30) % of the
# machine's 200 % (neighbours on a shared machine); they stay in the medians.
set -euo pipefail
. "$(dirname "$0")/common.sh"
RAW=${1:-$RESULTS/raw.tsv}
[ -s "$RAW" ] || die "no rows in $RAW"
awk -F'\t' '
NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
$c["status"] != "ok" { bad[$c["mode"] " " $c["target"] " " $c["size"] ": " $c["status"]]++; next }
{
    k = $c["mode"] SUBSEP $c["target"] SUBSEP $c["version"] SUBSEP $c["size"] SUBSEP $c["sess"] SUBSEP $c["N"]
    if (!(k in n)) order[++nk] = k
    j = ++n[k]
    v["inj", k, j] = $c["inject_rate"]; v["e2e", k, j] = $c["e2e_rate"]
    v["cpums", k, j] = $c["cpu_ms_per_msg"]; v["cpu", k, j] = $c["mta_cpu_pct"]
    v["pss", k, j] = $c["peak_pss_mb"]; v["rss", k, j] = $c["peak_rss_mb"]
    v["oth", k, j] = $c["other_cpu_pct"]; v["bg", k, j] = $c["bg_before_pct"]
    v["tools", k, j] = $c["sink_cpu_pct"] + $c["source_cpu_pct"]
    if ($c["other_cpu_pct"] + 0 > noisy) nz[k]++
    # per mode+size+target: for the ratios
    rk = $c["mode"] SUBSEP $c["size"] SUBSEP $c["sess"]
    if (!(rk in seen)) { seen[rk] = 1; rorder[++nr] = rk }
    tk = rk SUBSEP $c["target"]
    if (!(tk in tn)) tlist[rk] = tlist[rk] " " $c["target"]
    tv[tk, ++tn[tk]] = $c["inject_rate"] + 0
}
function sorted(name, k, a,    m, i, j, t) {           # a[1..m] = sorted values
    m = n[k]
    for (i = 1; i <= m; i++) a[i] = v[name, k, i]
    for (i = 2; i <= m; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
    return m
}
function stat(name, k, fmt,    a, m, med) {              # "median [min-max]"
    m = sorted(name, k, a)
    if (a[1] == "NA" || a[m] == "NA") return "NA"
    med = (m % 2) ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2
    if (m == 1 || sprintf(fmt, a[1]) == sprintf(fmt, a[m])) return sprintf(fmt, med)
    return sprintf(fmt " [" fmt "-" fmt "]", med, a[1], a[m])
}
function tstat(tk, what,    a, m, i, j, t) {              # median/min/max of a target
    m = tn[tk]
    for (i = 1; i <= m; i++) a[i] = tv[tk, i]
    for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
    if (what == "min") return a[1]
    if (what == "max") return a[m]
    return (m % 2) ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2
}
function human(size) { return size % 1024 ? size " B" : (size / 1024) " KiB" }
END {
    print "| mode | system | version | msg size | sessions | N | runs | injection msg/s | end-to-end msg/s | MTA CPU ms/msg | MTA CPU % (of 200) | MTA peak PSS MB | MTA peak RSS-sum MB | sink+source CPU % | other CPU % | busy before % | noisy runs |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (o = 1; o <= nk; o++) {
        k = order[o]; split(k, f, SUBSEP)
        printf "| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
            f[1], f[2], f[3], human(f[4]), f[5], f[6], n[k],
            stat("inj", k, "%.0f"), stat("e2e", k, "%.0f"), stat("cpums", k, "%.2f"), stat("cpu", k, "%.0f"),
            stat("pss", k, "%.1f"), stat("rss", k, "%.1f"), stat("tools", k, "%.0f"), stat("oth", k, "%.0f"),
            stat("bg", k, "%.0f"), nz[k]
    }
    printf "\n(noisy run: more than %d %% of the 200 %% went to neither the MTA nor the load tools)\n", noisy
    header = 0
    for (r = 1; r <= nr; r++) {
        rk = rorder[r]; split(rk, f, SUBSEP)
        if (f[1] != "inject") continue
        nb = split("postfix postfix-hold", bases, " ")
        for (b = 1; b <= nb; b++) {
            bk = rk SUBSEP bases[b]
            if (!(bk in tn)) continue
            nt = split(tlist[rk], ts, " ")
            for (t = 1; t <= nt; t++) {
                if (ts[t] ~ /^postfix/) continue
                tk = rk SUBSEP ts[t]
                if (!header) {
                    print ""
                    print "| msg size | sessions | ratio | injection ratio (of medians) | range (min/max .. max/min) |"
                    print "|---|---|---|---|---|"
                    header = 1
                }
                printf "| %s | %s | %s / %s | **%.2fx** | %.2fx .. %.2fx |\n", human(f[2]), f[3], ts[t], bases[b],
                    tstat(tk, "med") / tstat(bk, "med"), tstat(tk, "min") / tstat(bk, "max"), tstat(tk, "max") / tstat(bk, "min")
            }
        }
    }
    for (x in bad) printf "\nfailed run (not in the tables): %s (x%d)\n", x, bad[x]
}' noisy="${NOISY_PCT:-30}" "$RAW"
