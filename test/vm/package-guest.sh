#!/bin/sh
# Runs as root inside the systemd VM (see test/vm/package.test.ts): installs the schedctl package
# from the payload disk and exercises it under systemd. Every step prints one JSON line after
# the result marker: {step, rc, out, ...}; the host decides what passes.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

emit() { # STEP RC OUTPUT [EXTRA_JSON]
  extra="${4:-}"
  [ -n "$extra" ] || extra='{}'
  printf 'SCHEDCTL-RESULT %s\n' "$(jq -cn --arg step "$1" --argjson rc "$2" --arg out "$3" \
    --argjson extra "$extra" '{step: $step, rc: $rc, out: $out} + $extra')"
}
# STEP COMMAND...: runs it (bounded by $limit seconds), reports its status and output's tail.
limit=180
step() {
  name="$1"
  shift
  out="$(timeout "$limit" "$@" 2>&1)"
  rc=$?
  emit "$name" "$rc" "$(printf '%s' "$out" | tail -c 6000)"
}
sched_ext() { # the kernel's word: state and the attached ops, as JSON
  state="$(cat /sys/kernel/sched_ext/state)"
  ops="$(cat /sys/kernel/sched_ext/root/ops 2>/dev/null)"
  jq -cn --arg state "$state" --arg ops "$ops" '{state: $state, ops: $ops}'
}
unit() { # PROPERTY: one property of schedctld.service
  systemctl show schedctld.service -p "$1" --value
}
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

emit boot 0 "$(uname -r)" "$(jq -cn --arg pid1 "$(cat /proc/1/comm)" --argjson kernel "$(sched_ext)" \
  --argjson uptimeMs "$(uptime_ms)" '{pid1: $pid1, kernel: $kernel, uptimeMs: $uptimeMs}')"

# No qemu in this guest for the sandbox stage: verified candidates go straight to probation.
# Manual mode: only the test's own switch touches the kernel, so what it reads is what it did.
mkdir -p /etc/schedctl/conf.d
printf '[daemon]\nmode = "manual"\n\n[verify]\ndynamic = "probation-only"\n' >/etc/schedctl/conf.d/50-vm-test.toml

deb="$(ls /mnt/payload/schedctl_*_amd64.deb)"
t0="$(uptime_ms)"
limit=900 step install dpkg -i "$deb"
emit installed 0 "" "$(jq -cn --argjson ms "$(($(uptime_ms) - t0))" --arg enabled "$(systemctl is-enabled schedctld)" \
  --arg group "$(getent group schedctl)" --arg key "$(stat -c '%a %U %s' /etc/schedctl/llm-api-key 2>&1)" \
  --arg files "$(dpkg -L schedctl | wc -l)" --arg prebuilt "$(ls /usr/lib/schedctl/prebuilt/objects 2>&1 | wc -l)" \
  '{ms: $ms, enabled: $enabled, group: $group, key: $key, files: $files, prebuilt: $prebuilt}')"
step verify systemd-analyze verify --man=no schedctld.service
step security systemd-analyze security --no-pager schedctld.service

# Started by the package's postinst; `systemctl start` returns once it is active or has failed.
step start systemctl start schedctld.service
emit active 0 "$(journalctl -u schedctld --no-pager -o short-monotonic | tail -n 40)" "$(jq -cn \
  --arg state "$(unit ActiveState)" --arg sub "$(unit SubState)" --arg type "$(unit Type)" \
  --arg notify "$(unit NotifyAccess)" --arg status "$(unit StatusText)" --arg watchdog "$(unit WatchdogUSec)" \
  --arg enteredUs "$(unit ActiveEnterTimestampMonotonic)" --arg startedUs "$(unit ExecMainStartTimestampMonotonic)" \
  '{state: $state, sub: $sub, type: $type, notify: $notify, status: $status, watchdog: $watchdog,
    enteredUs: $enteredUs, startedUs: $startedUs}')"

step status-root schedctl status --json
step status-user runuser -u tester -- schedctl status --json
step switch-user runuser -u tester -- schedctl switch fifo
emit after-switch-user 0 "" "$(sched_ext)"
step switch-root schedctl switch fifo
emit after-switch-root 0 "$(ls -R /sys/fs/bpf/schedctl 2>&1)" "$(sched_ext)"

journalctl -u schedctld -o json --no-pager >/tmp/journal.json
emit journal 0 "" "$(jq -sc '{fields: ([.[] | keys[] | select(startswith("SCHEDCTL_"))] | unique),
  messageIds: ([.[] | .MESSAGE_ID // empty] | unique), records: length}' /tmp/journal.json)"

step stop systemctl stop schedctld.service
emit after-stop 0 "$(ls -R /sys/fs/bpf/schedctl 2>&1)" "$(sched_ext)"

# The watchdog: a stopped (SIGSTOP) daemon sends no keep-alive; systemd must kill and restart it.
step restart systemctl start schedctld.service
pid="$(unit MainPID)"
restarts="$(unit NRestarts)"
kill -STOP "$pid"
t0="$(uptime_ms)"
new="$pid"
while [ $(($(uptime_ms) - t0)) -lt 120000 ]; do
  new="$(unit MainPID)"
  if [ "$new" != "$pid" ] && [ "$new" != 0 ] && [ "$(unit ActiveState)" = active ]; then break; fi
  sleep 1
done
emit watchdog 0 "$(journalctl -u schedctld --no-pager | grep -i -e watchdog -e 'Scheduled restart' | tail -n 5)" \
  "$(jq -cn --arg before "$pid" --arg after "$new" --arg restartsBefore "$restarts" --arg restartsAfter "$(unit NRestarts)" \
  --arg state "$(unit ActiveState)" --argjson ms "$(($(uptime_ms) - t0))" \
  '{before: $before, after: $after, restartsBefore: $restartsBefore, restartsAfter: $restartsAfter, state: $state, ms: $ms}')"

rm /etc/schedctl/conf.d/50-vm-test.toml
step purge dpkg --purge schedctl
systemctl daemon-reload
left=""
for path in /usr/lib/schedctl /usr/bin/schedctl /usr/sbin/schedctld /etc/schedctl /var/lib/schedctl \
  /var/cache/schedctl /sys/fs/bpf/schedctl /lib/systemd/system/schedctld.service /usr/lib/systemd/system/schedctld.service \
  /etc/systemd/system/multi-user.target.wants/schedctld.service /usr/share/dbus-1/system.d/org.schedctl1.conf \
  /usr/lib/systemd/catalog/schedctl.catalog /usr/share/bash-completion/completions/schedctl; do
  if [ -e "$path" ] || [ -L "$path" ]; then left="$left $path"; fi
done
emit purged 0 "" "$(jq -cn --arg left "$left" --arg group "$(getent group schedctl)" \
  --arg found "$(find / -xdev \( -path /proc -o -path /mnt \) -prune -o -name '*schedctl*' -print 2>/dev/null)" \
  --arg units "$(systemctl list-unit-files --no-legend 'schedctld*')" --arg dpkg "$(dpkg-query -W -f '${Status}' schedctl 2>&1)" \
  --argjson kernel "$(sched_ext)" '{left: $left, group: $group, found: $found, units: $units, dpkg: $dpkg, kernel: $kernel}')"
