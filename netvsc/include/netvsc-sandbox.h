/*
 * netvsc-sandbox: the system-call filter of a guest worker (hv-vm) in its
 * steady state, the last layer of a child partition's confinement (the
 * process backend's jail, hv.h, is the first: namespaces, an unprivileged
 * uid, no capabilities, no_new_privs).
 *
 * The filter allows what hv-vm does once it is set up and nothing else:
 * moving frames (read/write on TAPs, eventfds and sockets), hypercalls and
 * the TAP broker (messages on their sockets, with descriptors), NIC
 * (re)opens (netlink sockets of the route family only, TAP carrier and
 * offload ioctls only), memory (never executable), epoll, poll, the clock,
 * exit. Anything else, opening a file, ptrace, exec, fork, kill, a socket
 * of another family, kills the whole process with SIGSYS
 * (SECCOMP_RET_KILL_PROCESS); the kernel's audit log (where audit is on)
 * names the call, and the root reports the partition as killed by SIGSYS.
 * Calls from another ABI (i386, x32) are killed alike.
 *
 * So a program under it must have done everything else before: opened
 * what it needs, given stdout its buffer (stdio would fstat), and it must
 * make its TAPs through the root's broker (nettap.h).
 *
 * Single-threaded callers: the filter is installed for the calling thread
 * (it allows no clone, so there are no others later).
 */
#ifndef NETVSC_SANDBOX_H
#define NETVSC_SANDBOX_H

/* Install the filter, and no_new_privs (which an unprivileged process needs
 * for it). 0 or a negative errno: -EINVAL or -ENOSYS if the kernel cannot
 * filter system calls, -ENOMEM. It cannot be removed. */
int netvsc_sandbox_enter(void);

/* What went wrong in the last failing netvsc_sandbox_enter() ("" if none). */
const char *netvsc_sandbox_last_error(void);

#endif
