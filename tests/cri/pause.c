/* The sandbox ("pause") process of the test pod image: sleeps until
 * SIGTERM or SIGINT. As PID 1 of its PID namespace it gets no default
 * signal actions, hence the handlers. Built with `gcc -static`. */
#include <signal.h>
#include <unistd.h>

static void done(int sig)
{
    (void)sig;
    _exit(0);
}

int main(void)
{
    signal(SIGTERM, done);
    signal(SIGINT, done);
    for (;;)
        pause();
}
