# summary_check.jq - the closing summary's figures computed again from the session records
# of the same NDJSON report (jq -n -f summary_check.jq < report.ndjson). Prints the list of
# figures that differ (empty: every one agrees). Sessions: every record of type "session";
# the summary: the last record of type "summary".
def rank($n; $p): (($n * $p + 99) / 100 | floor) as $r | if $r < 1 then 1 else $r end;
def pct: sort as $s | ($s | length) as $n
    | {count: $n, max: $s[-1], p50: $s[rank($n; 50) - 1], p95: $s[rank($n; 95) - 1]};
def counts(f): reduce (.[] | f | select(. != null)) as $k ({}; .[$k] += 1);
def skey: if (.ip | test(":")) then "[\(.ip)]:\(.port)" else "\(.ip):\(.port)" end;
def rkey: "\(.code)" + (if (.enhanced // "") != "" and (.enhanced | test(" ") | not)
    then " \(.enhanced)" else "" end);
# A histogram's percentile is the top of its bucket, at most 1/16 above the value.
def near($exact; $got): $got >= $exact and $got <= $exact + $exact / 16 + 0.001;

[inputs] as $all
| [$all[] | select(.type == "session")] as $S
| ([$all[] | select(.type == "summary")] | last) as $sum
| [
    (if $sum.sessions != ($S | length) then "sessions" else empty end),
    (if $sum.outcomes != ($S | counts(.outcome)) then "outcomes" else empty end),
    (if $sum.tcp_ends != ($S | counts(.tcp.end)) then "tcp_ends" else empty end),
    (if $sum.anomalies != ([$S[].anomalies[]?] | counts(.id)) then "anomalies" else empty end),
    (if $sum.messages != {delivered: ([$S[].messages.delivered // 0] | add // 0),
                          rejected: ([$S[].messages.rejected // 0] | add // 0),
                          deferred: ([$S[].messages.deferred // 0] | add // 0),
                          cut: ([$S[].messages.incomplete // 0] | add // 0)}
     then "messages" else empty end),
    ([$S[].transactions[]?.rcpt[]? | select((.code // 0) >= 400)] as $ref
     | (if $sum.recipients_refused.total != ($ref | length) then "recipients_refused.total"
        else empty end),
       (if ([$sum.recipients_refused.reasons[] | {key: rkey, value: .count}] | from_entries)
           != ($ref | counts(rkey)) then "recipients_refused.reasons" else empty end)),
    ([$S[].auth[]?] as $A
     | (if $sum.auth.attempts != ($A | length) then "auth.attempts" else empty end),
       (if $sum.auth.users != ($A | map(select(.user != null)) | group_by(.user)
            | map({key: .[0].user, value: ({attempts: length, results: counts(.result)}
                   + (map(select(.code != null)) | if length > 0
                      then {replies: counts(rkey)} else {} end))}) | from_entries)
        then "auth.users" else empty end)),
    ($S | group_by(.server | skey)[] | (.[0].server | skey) as $k | $sum.servers[$k] as $e
     | (if $e.sessions != length then "servers[\($k)].sessions" else empty end),
       (if $e.syn_unanswered != (map(select(.tcp.end == "syn_unanswered")) | length)
        then "servers[\($k)].syn_unanswered" else empty end),
       ([.[].banner.delay_ms // empty] | if length == 0 then
            (if $e.banner_delay_ms != null then "servers[\($k)].banner_delay_ms" else empty end)
        else pct as $p | if ($e.banner_delay_ms | del(.exact)) != $p
            then "servers[\($k)].banner_delay_ms" else empty end end),
       ([.[].transcript[]?.latency_ms // empty] | if length == 0 then
            (if $e.reply_ms != null then "servers[\($k)].reply_ms" else empty end)
        else pct as $p | $e.reply_ms as $r
            | if $r.exact then (if ($r | del(.exact)) != $p then "servers[\($k)].reply_ms"
                                else empty end)
              elif $r.count != $p.count or $r.max != $p.max or ($p.count <= 1024)
                   or (near($p.p50; $r.p50) and near($p.p95; $r.p95) | not)
              then "servers[\($k)].reply_ms (histogram)" else empty end end)),
    (if ($sum.servers | length) != ($S | map(.server | skey) | unique | length)
     then "servers (count)" else empty end),
    ([$S[] | .id as $id | [.transactions[]?.data | select(. != null)
        | if (.headers.message_id // "") != "" then "message_id \(.headers.message_id)"
          elif .sha256 then "sha256 \(.sha256)" else empty end] | unique[] | {k: ., id: $id}]
     | group_by(.k) | map(select(length >= 2)
        | {k: .[0].k, sessions: length, ids: (map(.id) | sort | .[:16])})
     | sort_by(-.sessions, .k)) as $dup
    | (if ([$sum.duplicate_messages[]
            | {k: (if .message_id then "message_id \(.message_id)" else "sha256 \(.sha256)" end),
               sessions, ids}]) != $dup then "duplicate_messages" else empty end)
  ]
