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
# until UNTIL_REGEX appears in LOG, kvisor exits, or TIMEOUT seconds pass.
# Sets BOOT_RC (kvisor's status, or "killed" when we stopped it) and BOOT_SECS.
boot_until() {
	local log=$1 timeout=$2 until=$3
	shift 4
	local start pid
	start=$(date +%s)
	"$KVISOR" run "$@" </dev/null >"$log" 2>&1 &
	pid=$!
	BOOT_RC=killed
	while kill -0 "$pid" 2>/dev/null; do
		if grep -qE "$until" "$log"; then
			sleep 1
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
	if [ "$BOOT_RC" = killed ] && ! grep -qE "$until" "$log"; then
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
