/* mqtt_rt: QoS 1 round trips between libmosquitto clients, for tokenbook's bench.
 *
 *   mqtt_rt echo  HOST PORT IN OUT
 *       Subscribes to IN (QoS 1) and publishes every message back on OUT (QoS 1).
 *       Prints "ready" once subscribed; runs until SIGTERM or SIGINT.
 *
 *   mqtt_rt drive [options] HOST PORT IN OUT
 *       Publishes messages on IN at QoS 1 and waits for each one's answer on OUT; the
 *       answer is matched to its message by a key (raw: the leading sequence number;
 *       order: the ClOrdID of the first execution report naming it). Prints one JSON
 *       line of figures for the measured phase, after an unmeasured warm-up.
 *       -n N        messages measured (default 10000)
 *       -W N        warm-up messages before them, not measured (default 1000)
 *       -w K        at most K unanswered at once (default 100)
 *       -r RATE     paced at RATE messages/s (open loop, latency from the scheduled
 *                   send time); 0 (default): closed loop, a new one per answer
 *       -m MODE     raw (default: S-byte payload "<seq>:xxxx") or order (a tokenbook
 *                   NewOrderSingle JSON; the answer is the first exec report for it)
 *       -s S        raw payload bytes (default 100)
 *       -x PREFIX   ClOrdIDs are PREFIX-<seq> (order mode; letters and digits)
 *       -k EVERY    order mode: every EVERY-th order is a sell IOC of 0.02 at 97.900
 *                   from account 3 that crosses the two buys before it; the others
 *                   are GTC buys of 0.01 at 97.950-97.999 from account 1 (default 3;
 *                   0: never cross)
 *       -c PID      read /proc/PID/stat (utime + stime) at both ends of the measured
 *                   phase; repeat for several processes (the host's busy and total
 *                   ticks from /proc/stat are read at the same moments)
 *       -L FILE     write the measured latencies (microseconds, one a line) to FILE
 *       -T SECS     give up after SECS in one phase (default 120): exit 3
 *
 * Both clients speak MQTT 5 with TCP_NODELAY and run their own poll loop around
 * mosquitto_loop_read / mosquitto_loop_write (no library thread). The clients ask for
 * Receive/Send Maximum K; the broker's own limit (mosquitto: 20) still applies.
 * Build: gcc -O2 -o mqtt_rt mqtt_rt.c -lmosquitto
 */
#define _GNU_SOURCE
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 8
#define KEEPALIVE 60

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "mqtt_rt: %s: %s\n", what, rc ? mosquitto_strerror(rc) : strerror(errno));
    exit(2);
}

/* ------------------------------------------------------------------ the client */
typedef struct {
    int connected, subscribed, lost;
} link_t;

static void on_connect(struct mosquitto *m, void *obj, int rc) {
    (void)m;
    link_t *l = obj;
    if (rc) {
        fprintf(stderr, "mqtt_rt: connection refused: %s\n", mosquitto_connack_string(rc));
        exit(2);
    }
    l->connected = 1;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *qos) {
    (void)m; (void)mid;
    link_t *l = obj;
    if (n < 1 || qos[0] > 2) {
        fprintf(stderr, "mqtt_rt: subscription refused\n");
        exit(2);
    }
    l->subscribed = 1;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc) {
    (void)m; (void)rc;
    ((link_t *)obj)->lost = 1;
}

/* One turn of the loop: wait up to timeout_s for the socket, read what came, write
 * what is queued (the answers and PUBACKs made in callbacks), run the keep-alive. */
static void step(struct mosquitto *m, double timeout_s) {
    struct pollfd p = {.fd = mosquitto_socket(m), .events = POLLIN};
    if (p.fd < 0) die("no socket", MOSQ_ERR_NO_CONN);
    if (mosquitto_want_write(m)) p.events |= POLLOUT;
    if (timeout_s < 0) timeout_s = 0;
    struct timespec ts = {(time_t)timeout_s, (long)((timeout_s - (time_t)timeout_s) * 1e9)};
    int r = ppoll(&p, 1, &ts, NULL);
    if (r < 0 && errno != EINTR) die("poll", 0);
    int rc;
    if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        rc = mosquitto_loop_read(m, 1);
        if (rc) die("read", rc);
    }
    if (mosquitto_want_write(m)) {
        rc = mosquitto_loop_write(m, 1);
        if (rc) die("write", rc);
    }
    rc = mosquitto_loop_misc(m);
    if (rc && rc != MOSQ_ERR_NO_CONN) die("keep-alive", rc);
}

static struct mosquitto *open_client(const char *host, int port, const char *sub, int window,
                                     void *obj, link_t *l) {
    struct mosquitto *m = mosquitto_new(NULL, true, obj);
    if (!m) die("mosquitto_new", 0);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, window < 20 ? 20 : window);
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, window < 20 ? 20 : window);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    int rc = mosquitto_connect(m, host, port, KEEPALIVE);
    if (rc) die("connect", rc);
    double deadline = now_s() + 10;
    while (!l->connected && now_s() < deadline) step(m, 0.1);
    if (!l->connected) die("no CONNACK within 10 s", MOSQ_ERR_TIMEOUT);
    rc = mosquitto_subscribe(m, NULL, sub, 1);
    if (rc) die("subscribe", rc);
    while (!l->subscribed && now_s() < deadline) step(m, 0.1);
    if (!l->subscribed) die("no SUBACK within 10 s", MOSQ_ERR_TIMEOUT);
    return m;
}

/* ------------------------------------------------------------------ echo */
typedef struct {
    link_t link;
    const char *out;
    long echoed;
} echo_t;

static void echo_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg) {
    echo_t *e = obj;
    int rc = mosquitto_publish(m, NULL, e->out, msg->payloadlen, msg->payload, 1, false);
    if (rc) die("publish", rc);
    e->echoed++;
}

static int run_echo(const char *host, int port, const char *in, const char *out) {
    echo_t e = {.out = out};
    struct mosquitto *m = open_client(host, port, in, 1000, &e, &e.link);
    mosquitto_message_callback_set(m, echo_message);
    printf("ready\n");
    fflush(stdout);
    while (!stop_flag && !e.link.lost) step(m, 0.2);
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    fprintf(stderr, "mqtt_rt echo: %ld messages\n", e.echoed);
    return 0;
}

/* ------------------------------------------------------------------ drive */
enum { RAW, ORDER };

typedef struct {
    link_t link;
    struct mosquitto *m;
    const char *in;
    int mode, payload, cross_every, window;
    const char *prefix;
    size_t prefix_len;
    long total, next, phase_start, phase_end, acks, inflight, extra, stray;
    double rate, t0, last_ack;
    double *sent;            /* send time (scheduled, when paced) per sequence number */
    unsigned char *acked;
    double *lat;             /* measured phase: latency per answer, seconds */
    long nlat;
    int record;
} drive_t;

static int make_payload(drive_t *d, long seq, char *buf, size_t cap) {
    if (d->mode == RAW) {
        int n = snprintf(buf, cap, "%ld:", seq);
        while (n < d->payload && (size_t)n < cap - 1) buf[n++] = 'x';
        return n;
    }
    if (d->cross_every > 0 && seq % d->cross_every == d->cross_every - 1)
        return snprintf(buf, cap,
                        "{\"msg\":\"new_order\",\"cl_ord_id\":\"%s-%ld\",\"account\":3,"
                        "\"symbol\":\"TB3M\",\"side\":\"sell\",\"qty\":\"0.02\","
                        "\"price\":\"97.900\",\"time_in_force\":\"ioc\"}",
                        d->prefix, seq);
    return snprintf(buf, cap,
                    "{\"msg\":\"new_order\",\"cl_ord_id\":\"%s-%ld\",\"account\":1,"
                    "\"symbol\":\"TB3M\",\"side\":\"buy\",\"qty\":\"0.01\","
                    "\"price\":\"97.%03ld\",\"time_in_force\":\"gtc\"}",
                    d->prefix, seq, 950 + seq % 50);
}

static void send_one(drive_t *d, double at) {
    char buf[4096];
    long seq = d->next++;
    int n = make_payload(d, seq, buf, sizeof buf);
    d->sent[seq] = at;
    d->inflight++;
    int rc = mosquitto_publish(d->m, NULL, d->in, n, buf, 1, false);
    if (rc) die("publish", rc);
}

/* The sequence number an answer is for, or -1 (not one of this run's). */
static long key_of(drive_t *d, const struct mosquitto_message *msg) {
    char buf[4096];
    int len = msg->payloadlen < (int)sizeof buf - 1 ? msg->payloadlen : (int)sizeof buf - 1;
    memcpy(buf, msg->payload, len);
    buf[len] = 0;
    char *p = buf, *end;
    if (d->mode == ORDER) {
        static const char key[] = "\"cl_ord_id\":\"";
        p = strstr(buf, key);
        if (!p) return -1;
        p += sizeof key - 1;
        if (strncmp(p, d->prefix, d->prefix_len) || p[d->prefix_len] != '-') return -1;
        p += d->prefix_len + 1;
    }
    long seq = strtol(p, &end, 10);
    return end == p ? -1 : seq;
}

static void drive_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg) {
    (void)m;
    drive_t *d = obj;
    double now = now_s();
    long seq = key_of(d, msg);
    if (seq < 0 || seq >= d->next) {
        d->stray++;
        return;
    }
    if (d->acked[seq]) {     /* a later report of an answered order (its fills) */
        d->extra++;
        return;
    }
    d->acked[seq] = 1;
    d->inflight--;
    if (seq >= d->phase_start && seq < d->phase_end) {
        d->acks++;
        d->last_ack = now;
        if (d->record) d->lat[d->nlat++] = now - d->sent[seq];
    }
    if (d->rate <= 0)
        while (d->inflight < d->window && d->next < d->phase_end) send_one(d, now_s());
}

/* Send count messages (closed loop or paced) and wait for all their answers. */
static int phase(drive_t *d, long count, double timeout) {
    d->phase_start = d->next;
    d->phase_end = d->next + count;
    d->acks = 0;
    d->t0 = now_s();
    d->last_ack = d->t0;
    double deadline = d->t0 + timeout;
    if (d->rate <= 0)
        while (d->inflight < d->window && d->next < d->phase_end) send_one(d, now_s());
    while (d->acks < count) {
        double now = now_s(), wait = 0.1;
        if (now > deadline || stop_flag || d->link.lost) return -1;
        if (d->rate > 0) {
            while (d->next < d->phase_end && d->inflight < d->window) {
                double due = d->t0 + (d->next - d->phase_start) / d->rate;
                if (due > now) {
                    wait = due - now;
                    break;
                }
                send_one(d, due);
            }
        }
        step(d->m, wait);
    }
    return 0;
}

static long ticks_of(int pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    long utime = 0, stime = 0;
    /* after the command: field 3 (state) ... field 14 utime, 15 stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime,
               &stime) != 2)
        return -1;
    return utime + stime;
}

/* The host's busy and total CPU ticks (all cores) from the first line of /proc/stat. */
static void host_ticks(long long *busy, long long *total) {
    long long v[8] = {0};
    *busy = *total = -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return;
    int n = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8) return;
    /* user nice system idle iowait irq softirq steal */
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    *total = *busy + v[3] + v[4];
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *xs, long n, double p) {
    if (n == 0) return 0;
    long i = (long)(p / 100 * n);
    return xs[i >= n ? n - 1 : i];
}

static int run_drive(int argc, char **argv) {
    long n = 10000, warmup = 1000;
    int window = 100, pids[MAX_PIDS], npids = 0, opt;
    double rate = 0, timeout = 120;
    const char *lat_file = NULL;
    drive_t d = {.mode = RAW, .payload = 100, .cross_every = 3, .prefix = "o"};
    while ((opt = getopt(argc, argv, "n:W:w:r:m:s:x:k:c:L:T:")) != -1) {
        switch (opt) {
        case 'n': n = atol(optarg); break;
        case 'W': warmup = atol(optarg); break;
        case 'w': window = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'm': d.mode = strcmp(optarg, "order") ? RAW : ORDER; break;
        case 's': d.payload = atoi(optarg); break;
        case 'x': d.prefix = optarg; break;
        case 'k': d.cross_every = atoi(optarg); break;
        case 'c': if (npids < MAX_PIDS) pids[npids++] = atoi(optarg); break;
        case 'L': lat_file = optarg; break;
        case 'T': timeout = atof(optarg); break;
        default: return 64;
        }
    }
    if (argc - optind != 4 || n < 1 || warmup < 0 || window < 1) {
        fprintf(stderr, "usage: mqtt_rt drive [options] HOST PORT IN OUT\n");
        return 64;
    }
    const char *host = argv[optind], *in = argv[optind + 2], *out = argv[optind + 3];
    int port = atoi(argv[optind + 1]);
    d.prefix_len = strlen(d.prefix);
    d.in = in;
    d.window = window;
    d.total = n + warmup;
    d.sent = calloc(d.total, sizeof(double));
    d.acked = calloc(d.total, 1);
    d.lat = calloc(n, sizeof(double));
    if (!d.sent || !d.acked || !d.lat) die("out of memory", 0);
    d.m = open_client(host, port, out, window, &d, &d.link);
    mosquitto_message_callback_set(d.m, drive_message);

    d.rate = rate;
    if (warmup && phase(&d, warmup, timeout)) {
        printf("{\"error\":\"timeout\",\"phase\":\"warmup\",\"answered\":%ld}\n", d.acks);
        return 3;
    }
    long before[MAX_PIDS];
    long long busy0, total0, busy1, total1;
    for (int i = 0; i < npids; i++) before[i] = ticks_of(pids[i]);
    host_ticks(&busy0, &total0);
    double cpu0 = self_cpu();
    d.record = 1;
    int rc = phase(&d, n, timeout);
    double cpu1 = self_cpu();
    long after[MAX_PIDS];
    host_ticks(&busy1, &total1);
    for (int i = 0; i < npids; i++) after[i] = ticks_of(pids[i]);
    double elapsed = d.last_ack - d.t0;
    int major, minor, revision;
    mosquitto_lib_version(&major, &minor, &revision);
    if (rc) {
        printf("{\"error\":\"timeout\",\"phase\":\"measured\",\"answered\":%ld}\n", d.acks);
        return 3;
    }
    /* a moment for late reports of answered orders, so they are not left in flight */
    double settle = now_s() + 0.05;
    while (now_s() < settle) step(d.m, 0.01);
    if (lat_file) {
        FILE *f = fopen(lat_file, "w");
        if (!f) die(lat_file, 0);
        for (long i = 0; i < d.nlat; i++) fprintf(f, "%.1f\n", d.lat[i] * 1e6);
        fclose(f);
    }
    qsort(d.lat, d.nlat, sizeof(double), cmp_double);
    double mean = 0;
    for (long i = 0; i < d.nlat; i++) mean += d.lat[i];
    mean = d.nlat ? mean / d.nlat : 0;
    printf("{\"n\":%ld,\"answered\":%ld,\"elapsed_s\":%.6f,\"per_s\":%.1f,\"offered_per_s\":%.1f,"
           "\"window\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
           "\"mean_us\":%.1f,\"later_reports\":%ld,\"stray\":%ld,\"self_cpu_s\":%.6f,"
           "\"clk_tck\":%ld,\"libmosquitto\":\"%d.%d.%d\",\"host_busy_ticks\":%lld,"
           "\"host_total_ticks\":%lld,\"cpu_ticks\":{",
           n, d.acks, elapsed, elapsed > 0 ? n / elapsed : 0.0, rate, window,
           pct(d.lat, d.nlat, 50) * 1e6, pct(d.lat, d.nlat, 99) * 1e6,
           pct(d.lat, d.nlat, 99.9) * 1e6, d.nlat ? d.lat[d.nlat - 1] * 1e6 : 0.0, mean * 1e6,
           d.extra, d.stray, cpu1 - cpu0, sysconf(_SC_CLK_TCK), major, minor, revision,
           busy0 < 0 || busy1 < 0 ? -1 : busy1 - busy0,
           total0 < 0 || total1 < 0 ? -1 : total1 - total0);
    for (int i = 0; i < npids; i++)
        printf("%s\"%d\":%ld", i ? "," : "", pids[i],
               before[i] < 0 || after[i] < 0 ? -1 : after[i] - before[i]);
    printf("}}\n");
    fflush(stdout);
    mosquitto_disconnect(d.m);
    mosquitto_destroy(d.m);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    mosquitto_lib_init();
    int rc = 64;
    if (argc >= 2 && !strcmp(argv[1], "echo") && argc == 6)
        rc = run_echo(argv[2], atoi(argv[3]), argv[4], argv[5]);
    else if (argc >= 2 && !strcmp(argv[1], "drive"))
        rc = run_drive(argc - 1, argv + 1);
    else
        fprintf(stderr, "usage: mqtt_rt echo HOST PORT IN OUT | mqtt_rt drive [options] "
                        "HOST PORT IN OUT\n");
    mosquitto_lib_cleanup();
    return rc;
}
