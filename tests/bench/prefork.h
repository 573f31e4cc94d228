/* SPDX-License-Identifier: MIT */
/*
 * The prefork master of dev/bench's bare responders (hello_fcgi,
 * bare_turn): bulwark-fcgi's model without anything else. Listens on
 * SOCKET (mode 0666), forks CHILDREN children that each run child(fd, arg)
 * (which must not return), waits for SIGTERM or SIGINT, stops them and
 * removes the socket. name prefixes the messages. Returns main()'s status:
 * 0, 1 (cannot listen) or 2 (CHILDREN not 1..512).
 */
#ifndef BW_BENCH_PREFORK_H
#define BW_BENCH_PREFORK_H

int bench_prefork(const char *name, const char *socket, const char *children,
    void (*child)(int fd, void *arg), void *arg);

#endif
