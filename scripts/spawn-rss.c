/*
 * spawn-rss PROGRAM [ARGS...]: runs PROGRAM from a tiny static process and
 * prints "<peak RSS in KiB> <exit status> <wall time in us>" as the last
 * line on stderr. The wall time runs from just before fork() to the reaped
 * exit: what a container runtime waits for, without the benchmark's own
 * process start (Python's spawn of this launcher, its exec), which on a
 * loaded machine adds milliseconds to both plugins alike.
 *
 * Why not measure from the benchmark's Python: Linux carries the RSS a
 * process had before execve() into its ru_maxrss, so a child forked from a
 * 15 MiB Python reports at least 15 MiB whatever it runs. Forked from this
 * launcher, the inherited part is about 0.13 MiB (measured with a program
 * that only calls exit).
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: spawn-rss PROGRAM [ARGS...]\n");
        return 2;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) {
        perror("spawn-rss");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long us = (end.tv_sec - start.tv_sec) * 1000000L + (end.tv_nsec - start.tv_nsec) / 1000;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(stderr, "%ld %d %ld\n", ru.ru_maxrss, code, us);
    return code;
}
