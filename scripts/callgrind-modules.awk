# callgrind-modules.awk - instructions of a callgrind profile (callgrind.out, events: Ir)
# grouped by smtpsniff's modules. Prints "module<TAB>instructions" lines, then "total<TAB>N".
#
# Each cost line is charged to the source file it comes from (fi=/fe= lines name the file
# of inlined code, which matters with LTO, where a function holds code of many files) and
# the object it is in. The C library, libpsl and the allocation wrappers are not modules of
# their own: a call into them is charged to the caller's module with all it costs (memcpy
# for the JSON writer is the JSON writer's cost, the Public Suffix List's look-ups are the
# rules'). Where such a helper calls back into a module
# (qsort's comparator), that callback is counted once, by the caller.
#
# Usage: awk -f callgrind-modules.awk callgrind.out
#        callgrind_annotate ... | awk -v classify=1 -v root=SRCDIR/ -f callgrind-modules.awk
# The second form puts the module before each function line of callgrind_annotate's list
# and shortens the source paths.

function module(ob, fl, fname) {
    if (ob ~ /libc\.so|libc-|ld-linux|libm\.so|libpsl/ || fl ~ /(^|\/)src\/util\/mem\.c$/)
        return "helper"
    if (ob ~ /libnids/ || fl ~ /(^|\/)src\/(reasm|v6map|fragbound)\.c$/)
        return "reassembly (libnids, reasm.c)"
    if (ob ~ /libpcap/ || fl ~ /(^|\/)src\/(capture|decode|gzin|pcapng|ngread|run|filter|select)\.c$/)
        return "capture reading (libpcap, decode.c, run.c)"
    if (fl ~ /(^|\/)dissectors\/(smtp|sasl|tls|tlsdec|keylog)\.c$/)
        return "SMTP dissector (smtp.c, sasl.c, tls.c)"
    if (fl ~ /(^|\/)dissectors\/imf\.c$/)
        return "DATA reader (imf.c)"
    if (ob ~ /libcrypto/)
        return "hashing (libcrypto)"
    if (fl ~ /(^|\/)src\/rules\.c$/)
        return "rules (rules.c)"
    # the report tree's own writer (jt_dump*) is JSON writing, the rest of jtree.c building
    if (fl ~ /(^|\/)src\/util\/jsonx\.c$/ || (fl ~ /(^|\/)src\/util\/jtree\.c$/ && fname ~ /^jt_dump/))
        return "JSON writer (jsonx.c, jt_dump)"
    if (fl ~ /(^|\/)src\/(session|report|communityid)\.c$/ || fl ~ /(^|\/)src\/util\/(jtree|nodecache)\.c$/)
        return "report tree (session.c, report.c, jtree.c)"
    if (ob ~ /libjansson/ || fl ~ /(^|\/)src\/summary\.c$/)
        return "summary (summary.c, Jansson)"
    if (fl ~ /(^|\/)src\/(lines|eml|dump)\.c$/ || fl ~ /(^|\/)src\/util\/(esc|buf)\.c$/)
        return "text (esc.c, buf.c, lines.c)"
    if (ob ~ /\/tests\/floor_/ || fl ~ /(^|\/)tests\/tools\/floor_/)
        return "floor loop (floor_nids.c)"
    return "other (main.c, startup)"
}

# "(12) name" or "(12)" or "name": the id when names are compressed, else the name.
function key(s,    k) {
    if (match(s, /^\([0-9]+\)/))
        return substr(s, RSTART, RLENGTH)
    return s
}

# Remembers the name that goes with a compressed id, returns the name.
function name(tab, s,    k, rest) {
    k = key(s)
    rest = s
    sub(/^\([0-9]+\) ?/, "", rest)
    if (rest != "")
        names[tab, k] = rest
    return names[tab, k]
}

BEGIN { ob = ""; fl = ""; cur = ""; fn = ""; incall = 0 }

classify {
    line = $0
    sub(/ +$/, "", line)
    o = ""
    if (match(line, / \[[^]]*\]$/)) {
        o = substr(line, RSTART + 2, RLENGTH - 3)
        line = substr(line, 1, RSTART - 1)
    }
    if (!match(line, /^ *[0-9,]+ \( *[0-9.]+%\) +/))
        next
    head = substr(line, 1, RLENGTH)
    what = substr(line, RLENGTH + 1)
    f = what
    sub(/:[^:]*$/, "", f)
    fname = what
    sub(/^.*:/, "", fname)
    # lines without an object are code of one file inlined into a function of another
    m = module(o != "" ? o : "-", f, fname)
    if (m == "helper")
        m = "C library"
    if (root != "")
        gsub(root, "", what)
    if (f == "???" && o != "")
        what = what " [" o "]"
    sub(/ +$/, "", head)
    printf "%s  %-44s %s\n", head, m, what
    next
}

/^ob=/ { ob = name("ob", substr($0, 4)); next }
/^fl=/ { fl = name("fl", substr($0, 4)); cur = fl; next }
/^f[ie]=/ { cur = name("fl", substr($0, 4)); next }
/^fn=/ { fn = key(substr($0, 4)); fname = name("fn", substr($0, 4)); cur = fl; cob = ""; cfl = ""; next }
/^cob=/ { cob = name("ob", substr($0, 5)); next }
/^cf[il]=/ { cfl = name("fl", substr($0, 5)); next }
/^cfn=/ { cfn = key(substr($0, 5)); cfname = name("fn", substr($0, 5)); next }
/^calls=/ { incall = 1; next }
/^(totals|summary):/ { total = $2; next }
/^[0-9+*-]/ {
    c = $2 + 0
    m = module(ob, cur, fname)
    # an allocation wrapper inlined into a module's function is that module's code
    if (m == "helper" && cur != fl)
        m = module(ob, fl, fname)
    if (incall) {
        callee = module(cob != "" ? cob : ob, cfl != "" ? cfl : fl, cfname)
        if (m != "helper" && callee == "helper") {
            cost[m] += c
            reach[cfn] = 1
        } else if (m == "helper" && callee == "helper") {
            if (!((fn, cfn) in edge)) {
                edge[fn, cfn] = 1
                nedge++
                efrom[nedge] = fn
                eto[nedge] = cfn
            }
        } else if (m == "helper") {
            back[fn, callee] += c
            backfn[fn] = 1
            backmods[callee] = 1
        }
        incall = 0
        cob = ""
        cfl = ""
    } else if (m != "helper") {
        cost[m] += c
    }
    next
}

END {
    if (classify)
        exit
    # Helpers reached from a module, directly or through other helpers: what they call back
    # is in their caller's inclusive cost already. Helpers only the startup code reaches
    # (the C library's start calling main) are left alone.
    do {
        more = 0
        for (i = 1; i <= nedge; i++)
            if ((efrom[i] in reach) && !(eto[i] in reach)) {
                reach[eto[i]] = 1
                more = 1
            }
    } while (more)
    for (f in backfn)
        if (f in reach)
            for (m in backmods)
                if ((f, m) in back)
                    cost[m] -= back[f, m]
    for (m in cost)
        printf "%s\t%d\n", m, cost[m]
    printf "total\t%d\n", total
}
