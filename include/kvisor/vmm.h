/* The VM runner: builds a VM from its configuration and serves it on the
 * calling thread's event loop until it stops for good. */
#ifndef KVISOR_VMM_H
#define KVISOR_VMM_H

struct vm_config;

/* Run the VM that (cfg) describes: open the console and the profiler, build
 * and start the VM, then serve the main event loop on the calling thread —
 * SIGTERM/SIGINT stop the VM, SIGUSR2 pauses or resumes it (vm_pause,
 * vm_resume; "paused"/"resumed" logged), console input goes to the UART
 * (Ctrl-A x stops the VM), and the VM's stop eventfd ends the run. A guest
 * reboot builds the VM again when cfg->on_reboot says restart. Call it from
 * the main thread before any other thread exists: it blocks SIGTERM, SIGINT
 * and SIGUSR2 for every thread created after it (they arrive through a
 * signalfd). On every way out, the terminal is restored and the profile
 * written.
 * Returns 0 with *status set to the process exit status of the last run:
 * 0 after a power-off, a reboot (not restarted) or Ctrl-A x; 1 after a fatal
 * exit or a firmware test failure; 128+N after signal N. Returns -errno when
 * the console, the profiler or a VM could not be set up (message printed). */
int vmm_run(const struct vm_config *cfg, int *status) __attribute__((warn_unused_result));

#endif
