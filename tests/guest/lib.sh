# Helpers for Linux guest tests: boot kvisor, wait for console lines, assert.
# shellcheck shell=bash

KVISOR=${KVISOR:-build/kvisor}
GUEST_DIR=${GUEST_DIR:-build/guest}
PASSED=0
FAILED=0
SKIPPED=0

pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
skip() { echo "SKIPPED $*"; SKIPPED=$((SKIPPED + 1)); }

# need_kvm NAME...: true when /dev/kvm is usable; otherwise marks the tests skipped, loudly.
need_kvm() {
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then return 0; fi
	echo "**********************************************************************"
	echo "SKIPPED: /dev/kvm is not available: these guest tests did NOT run: $*"
	echo "**********************************************************************"
	for t in "$@"; do skip "$t (no /dev/kvm)"; done
	return 1
}

# boot_until LOG TIMEOUT UNTIL_REGEX -- kvisor args...
# Run kvisor with stdin from /dev/null, console output into LOG (stdout+stderr),
# until it exits, or UNTIL_REGEX appears in LOG and it does not exit by itself
# within 15 s, or TIMEOUT seconds pass. Sets BOOT_RC (kvisor's exit status,
# "killed" when we had to stop it after the regex, "timeout") and BOOT_SECS.
boot_until() {
	local log=$1 timeout=$2 until=$3 start pid seen=
	shift 4
	start=$(date +%s)
	: >"$log"
	"$KVISOR" run "$@" </dev/null >"$log" 2>&1 &
	pid=$!
	BOOT_RC=
	while kill -0 "$pid" 2>/dev/null; do
		if [ -z "$seen" ] && grep -qE "$until" "$log"; then
			seen=$(date +%s)
		fi
		if [ -n "$seen" ] && [ $(($(date +%s) - seen)) -ge 15 ]; then
			kill -TERM "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			BOOT_RC=killed
			break
		fi
		if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
			echo "  timeout after ${timeout}s; last console lines:"
			tail -n 5 "$log" | sed 's/^/    /'
			kill -TERM "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			BOOT_RC=timeout
			break
		fi
		sleep 1
	done
	if [ -z "$BOOT_RC" ]; then
		wait "$pid"
		BOOT_RC=$?
	fi
	BOOT_SECS=$(($(date +%s) - start))
}

# expect NAME LOG REGEX: one assertion on the console log.
expect() {
	if grep -qE "$3" "$2"; then pass "$1"; else fail "$1: no line matching /$3/ in $2"; fi
}

summary() {
	echo "$1: $PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" -eq 0 ]
}
