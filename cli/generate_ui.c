/* What `instantstyle generate` shows while it runs, and how it is interrupted. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "generate.h"

/* A log file gets a progress line at the first and last step and otherwise at most one per this
 * many seconds, so fast steps do not flood it and slow ones each show. */
#define IS_GEN_LINE_SECONDS 5.0

void is_gen_ui_log(void *user, const char *message) {
    const is_gen_ui *ui = user;
    if (ui->quiet && strncmp(message, "warning:", 8) != 0) return;
    fprintf(stderr, "%s%s\n", ui->tty ? "\r\033[K" : "", message);
}

/* "0:59" or "1:02:03" */
static void format_eta(double seconds, char *buf, size_t cap) {
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
}

static void draw_bar(int step, int total, double per, const char *eta) {
    enum { WIDTH = 30 };
    int filled = total ? step * WIDTH / total : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = 0;
    fprintf(stderr, "\r\033[Kstep %d/%d [%s] %.2f s/step, ETA %s", step, total, bar, per, eta);
    if (step == total) fprintf(stderr, "\n");
}

void is_gen_ui_progress(void *user, int step, int total, double seconds) {
    is_gen_ui *ui = user;
    if (ui->quiet || step <= 0) return;
    double per = seconds / step;
    char eta[32];
    format_eta(per * (total - step), eta, sizeof eta);
    if (ui->tty) {
        draw_bar(step, total, per, eta);
    } else if (step == 1 || step == total || seconds - ui->last_line >= IS_GEN_LINE_SECONDS) {
        fprintf(stderr, "step %d/%d, %.2f s/step, ETA %s\n", step, total, per, eta);
        ui->last_line = seconds;
    }
    fflush(stderr);
}

static volatile sig_atomic_t cancel_signal = 0;

static void on_signal(int sig) { cancel_signal = sig; }

void is_gen_cancel_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* RESETHAND: the first signal cancels cleanly, a second one (an impatient Ctrl-C) kills.
     * RESTART: file reads in progress are not cut short by the first. */
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int is_gen_cancel_requested(void *user) {
    (void)user;
    return cancel_signal != 0;
}

int is_gen_cancel_signal(void) { return cancel_signal; }
