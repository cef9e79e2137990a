/*
 * loadgen: a ping/pong load generator for heartbeat_twisted's benchmarks.
 *
 * One process, one epoll loop, many nonblocking connections, so the
 * client is never what limits a Python server.  bench/loadgen.py builds it
 * with gcc (into a build directory, never committed) and parses its output.
 *
 * Modes:
 *   closed  every connection keeps one "ping\n" in flight: the next is
 *           sent as soon as the reply line arrives.  Measures replies per
 *           second and the round-trip latency of each.
 *   fleet   every connection pings every --period seconds (+- --jitter,
 *           a fraction of it), the first at a random offset; a --silent
 *           share does the same until the measured window opens, then
 *           sends one more ping and nothing after it.  Records, per closed
 *           connection, the time from its last sent byte to the FIN (or
 *           reset) seen here: the close time measured at the client.
 *   expiry  the first --expiring connections send "k\n" every --keep
 *           seconds until the window opens, then one last "x\n" each,
 *           evenly spread over --spread seconds in connection order, and
 *           nothing after; the others send "p\n" every --period seconds
 *           (+- --jitter), answered by the server's echo.  The process
 *           ends once every expiring connection is closed (or after
 *           --duration).  With --fins FILE, one line per expiring
 *           connection: its local port, the CLOCK_MONOTONIC seconds of its
 *           last byte and of the FIN (0 if none); with --rtt-times FILE,
 *           one line per reply in the window: when the ping was sent and
 *           its round trip, in seconds.
 *
 * Output (stdout, one line each): "connected N failed M" once every
 * connection is open or has failed, "start" when the measured window opens
 * (--warmup seconds later, or when a line arrives on stdin with
 * --go stdin, so several processes can share one window), "end" when it
 * closes --duration seconds later, then one JSON object with the results.  With
 * --close-times FILE, every closed connection's close time in seconds,
 * one a line ("silent 45.3" or "busy 0.2"); with --histogram FILE, the
 * latency histogram (microseconds and count, one bucket a line).  Exit status 0, or 2 for bad arguments.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HIST_US 1000000 /* latency histogram: 1 us buckets up to 1 s */

enum { CONNECTING, OPEN, CLOSED };

typedef struct {
    int fd;
    int state;
    int silent;
    int inflight;
    int lineStart;
    int heapIndex;
    int64_t sentAt;   /* when the ping in flight was sent */
    int64_t lastSend; /* when the last byte was sent (or connected) */
    int64_t next;     /* fleet: when to send the next ping */
    int64_t finAt;    /* expiry: when the FIN (or reset) arrived */
    int last;         /* expiry: the next byte sent is the last */
    int port;         /* expiry: the local port */
} Conn;

static Conn *conns;
static int nconns;
static int *heap; /* fleet: min-heap of connection indexes by next */
static int heapSize;
static uint32_t *hist;
static uint64_t histOver;
static uint64_t replies, allReplies, errorLines, measuring;
static uint64_t connected, connectFailed, busyClosed, silentClosed, sendErrors;
static double *closeTimes;
static int nCloseTimes;
static double *busyCloseTimes;
static int nBusyCloseTimes;
static uint64_t rngState = 88172645463325252ULL;
static int expiry, nexpiring, expiringOpen;
static double *rttTimes; /* expiry: (sent at, round trip) pairs */
static size_t nRtt, capRtt;
static double cpuFirstFin, cpuLastFin;
static uint64_t resets; /* connections that ended with a reset, not a FIN */

static double cpuSeconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int64_t nowNs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double uniform(void) { /* xorshift64: in [0, 1) */
    rngState ^= rngState << 13;
    rngState ^= rngState >> 7;
    rngState ^= rngState << 17;
    return (double)(rngState >> 11) / 9007199254740992.0;
}

static void heapSwap(int a, int b) {
    int t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
    conns[heap[a]].heapIndex = a;
    conns[heap[b]].heapIndex = b;
}

static void heapUp(int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (conns[heap[p]].next <= conns[heap[i]].next) break;
        heapSwap(i, p);
        i = p;
    }
}

static void heapDown(int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heapSize && conns[heap[l]].next < conns[heap[m]].next) m = l;
        if (r < heapSize && conns[heap[r]].next < conns[heap[m]].next) m = r;
        if (m == i) break;
        heapSwap(i, m);
        i = m;
    }
}

static void heapPush(int c) {
    heap[heapSize] = c;
    conns[c].heapIndex = heapSize++;
    heapUp(heapSize - 1);
}

static void heapRemove(int c) {
    int i = conns[c].heapIndex;
    if (i < 0) return;
    conns[c].heapIndex = -1;
    heapSize--;
    if (i == heapSize) return;
    heap[i] = heap[heapSize];
    conns[heap[i]].heapIndex = i;
    heapUp(i);
    heapDown(conns[heap[i]].heapIndex);
}

static void record(int64_t ns) {
    int64_t us = ns / 1000;
    if (us < HIST_US)
        hist[us]++;
    else
        histOver++;
}

static double percentile(double q, uint64_t total) {
    if (total == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total) want = total - 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_US; i++) {
        seen += hist[i];
        if (seen > want) return i / 1000.0;
    }
    return HIST_US / 1000.0;
}

static int sendPing(Conn *c, int64_t now) {
    const char *ping = "ping\n";
    ssize_t size = 5;
    if (expiry) {
        ping = c->silent ? (c->last ? "x\n" : "k\n") : "p\n";
        size = 2;
    }
    ssize_t n = send(c->fd, ping, size, MSG_NOSIGNAL);
    if (n != size) { /* a short send to a healthy socket never splits */
        sendErrors++;
        return -1;
    }
    c->sentAt = c->lastSend = now;
    c->inflight = !(expiry && c->silent); /* "k" and "x" are not answered */
    return 0;
}

static void closeConn(int epfd, Conn *c, int idx, int64_t now, int fleet) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    /* expiry: a closing socket's own FIN costs this machine's kernel as
     * much as the server's did; keep it for the end, out of the window. */
    if (!expiry) close(c->fd);
    c->state = CLOSED;
    if (fleet) heapRemove(idx);
    double after = (now - c->lastSend) / 1e9;
    if (c->silent) {
        silentClosed++;
        closeTimes[nCloseTimes++] = after;
        c->finAt = now;
        if (expiry) {
            if (!cpuFirstFin) cpuFirstFin = cpuSeconds();
            if (!--expiringOpen) cpuLastFin = cpuSeconds();
        }
    } else {
        busyClosed++;
        busyCloseTimes[nBusyCloseTimes++] = after;
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port P [--host H] [--sources A,B,..] "
            "[--connections N]\n"
            "  [--mode closed|fleet] [--warmup S] [--duration S] "
            "[--connect-timeout S]\n"
            "  [--period S] [--jitter F] [--silent F] [--seed N] "
            "[--close-times FILE]\n"
            "  [--histogram FILE] [--concurrency N] [--go stdin]\n"
            "  [--expiring N] [--keep S] [--spread S] [--fins FILE] "
            "[--rtt-times FILE]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *sources = "", *mode = "closed";
    const char *closeTimesPath = NULL, *histogramPath = NULL;
    const char *finsPath = NULL, *rttPath = NULL;
    double keep = 1, spread = 0.5;
    int port = 0, concurrency = 256;
    double warmup = 1, duration = 5, period = 5, jitter = 0.1, silentShare = 0;
    double connectTimeout = 60;
    int waitGo = 0;
    nconns = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--sources")) sources = v;
        else if (!strcmp(a, "--connections")) nconns = atoi(v);
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--period")) period = atof(v);
        else if (!strcmp(a, "--jitter")) jitter = atof(v);
        else if (!strcmp(a, "--silent")) silentShare = atof(v);
        else if (!strcmp(a, "--seed")) rngState ^= strtoull(v, NULL, 10) * 2654435761ULL;
        else if (!strcmp(a, "--close-times")) closeTimesPath = v;
        else if (!strcmp(a, "--histogram")) histogramPath = v;
        else if (!strcmp(a, "--go")) waitGo = !strcmp(v, "stdin");
        else if (!strcmp(a, "--concurrency")) concurrency = atoi(v);
        else if (!strcmp(a, "--connect-timeout")) connectTimeout = atof(v);
        else if (!strcmp(a, "--expiring")) nexpiring = atoi(v);
        else if (!strcmp(a, "--keep")) keep = atof(v);
        else if (!strcmp(a, "--spread")) spread = atof(v);
        else if (!strcmp(a, "--fins")) finsPath = v;
        else if (!strcmp(a, "--rtt-times")) rttPath = v;
        else usage();
        i++;
    }
    expiry = !strcmp(mode, "expiry");
    int fleet = !strcmp(mode, "fleet") || expiry; /* expiry is scheduled as fleet */
    if (port <= 0 || port > 65535 || nconns <= 0 ||
        (!fleet && strcmp(mode, "closed")) || nexpiring < 0 || nexpiring > nconns ||
        keep <= 0 || spread < 0 ||
        duration <= 0 || warmup < 0 || period <= 0 || jitter < 0 || jitter >= 1 ||
        silentShare < 0 || silentShare > 1 || concurrency <= 0)
        usage();

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)nconns + 16 > rl.rlim_cur) {
        fprintf(stderr, "loadgen: %d connections need more than the %lu descriptors allowed\n",
                nconns, (unsigned long)rl.rlim_cur);
        return 2;
    }
    struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &dest.sin_addr) != 1) usage();
    struct in_addr src[64];
    int nsrc = 0;
    char *list = strdup(sources);
    for (char *tok = strtok(list, ","); tok && nsrc < 64; tok = strtok(NULL, ","))
        if (inet_pton(AF_INET, tok, &src[nsrc]) == 1) nsrc++;
        else usage();

    conns = calloc(nconns, sizeof(Conn));
    heap = calloc(nconns, sizeof(int));
    hist = calloc(HIST_US, sizeof(uint32_t));
    closeTimes = calloc(nconns, sizeof(double));
    busyCloseTimes = calloc(nconns, sizeof(double));
    int epfd = epoll_create1(0);
    struct epoll_event *events = calloc(1024, sizeof(struct epoll_event));

    /* Which connections are silent: evenly spread, the share rounded down. */
    int nsilent = 0;
    for (int i = 0; i < nconns; i++) {
        conns[i].silent = expiry ? i < nexpiring
                                 : (int)((i + 1) * silentShare) > (int)(i * silentShare);
        nsilent += conns[i].silent;
        conns[i].fd = -1;
        conns[i].heapIndex = -1;
    }

    int64_t start = nowNs();
    int64_t connectDeadline = start + (int64_t)(connectTimeout * 1e9);
    int nextToConnect = 0, pending = 0;
    int64_t windowStart = 0, windowEnd = 0;
    int reported = 0;
    double cpuAtStart = 0, cpuAtEnd = 0;
    char buf[4096];
    if (waitGo) { /* the window opens when a line arrives on stdin */
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
        epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    }

    for (;;) {
        int64_t now = nowNs();
        /* Open connections, at most `concurrency` handshakes at a time. */
        while (nextToConnect < nconns && pending < concurrency) {
            Conn *c = &conns[nextToConnect];
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0) {
                perror("loadgen: socket");
                return 1;
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (nsrc) {
                struct sockaddr_in me = {.sin_family = AF_INET,
                                         .sin_addr = src[nextToConnect % nsrc]};
                setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
                if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
                    perror("loadgen: bind");
                    return 1;
                }
            }
            c->fd = fd;
            c->state = CONNECTING;
            c->lineStart = 1;
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                                     .data.u32 = (uint32_t)nextToConnect};
            if (connect(fd, (struct sockaddr *)&dest, sizeof dest) < 0 && errno != EINPROGRESS) {
                connectFailed++;
                close(fd);
                c->fd = -1;
                c->state = CLOSED;
                nextToConnect++;
                continue;
            }
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
            pending++;
            nextToConnect++;
        }
        int allConnected = nextToConnect == nconns && pending == 0;
        if (!reported && (allConnected || now > connectDeadline)) {
            reported = 1;
            printf("connected %llu failed %llu\n", (unsigned long long)connected,
                   (unsigned long long)(connectFailed + pending));
            fflush(stdout);
            if (!waitGo) {
                windowStart = now + (int64_t)(warmup * 1e9);
                windowEnd = windowStart + (int64_t)(duration * 1e9);
            }
        }
        if (windowStart && !measuring && now >= windowStart) {
            measuring = 1;
            cpuAtStart = cpuSeconds();
            printf("start\n");
            fflush(stdout);
        }
        if (windowEnd && now >= windowEnd) break;
        if (expiry && measuring && nexpiring && !expiringOpen) break;

        /* Fleet: send the pings that are due. */
        int64_t wait = 100; /* ms */
        if (fleet) {
            while (heapSize && conns[heap[0]].next <= now) {
                int idx = heap[0];
                Conn *c = &conns[idx];
                if (sendPing(c, now) < 0) {
                    heapRemove(idx);
                    continue;
                }
                /* A silent connection pings like the others until the
                 * window opens (so the server keeps it however long the
                 * connection storm takes); its first ping in the window is
                 * its last. */
                if (expiry ? c->last : c->silent && windowStart && now >= windowStart) {
                    heapRemove(idx);
                } else {
                    double every = expiry && c->silent ? keep : period;
                    c->next = now + (int64_t)(every * (1 + jitter * (2 * uniform() - 1)) * 1e9);
                    heapDown(0);
                }
            }
            if (heapSize) {
                int64_t ms = (conns[heap[0]].next - now) / 1000000 + 1;
                if (ms < wait) wait = ms;
            }
        }
        if (windowEnd) {
            int64_t ms = (windowEnd - now) / 1000000 + 1;
            if (ms < wait) wait = ms;
        }
        if (nextToConnect < nconns || pending) wait = wait > 5 ? 5 : wait;

        int n = epoll_wait(epfd, events, 1024, (int)wait);
        now = nowNs();
        for (int e = 0; e < n; e++) {
            if (events[e].data.u32 == UINT32_MAX) { /* stdin: go, or EOF */
                ssize_t got = read(0, buf, sizeof buf);
                epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                if (got <= 0) goto done;
                windowStart = now;
                windowEnd = now + (int64_t)(duration * 1e9);
                measuring = 1;
                cpuAtStart = cpuSeconds();
                if (expiry) { /* the last bytes, evenly spread, in order */
                    for (int i = 0; i < nconns; i++) {
                        Conn *x = &conns[i];
                        if (!x->silent || x->state != OPEN || x->heapIndex < 0) continue;
                        x->last = 1;
                        x->next = now + (int64_t)(spread * i / (nexpiring ? nexpiring : 1) * 1e9);
                        heapUp(x->heapIndex);
                        heapDown(x->heapIndex);
                    }
                }
                printf("start\n");
                fflush(stdout);
                continue;
            }
            int idx = (int)events[e].data.u32;
            Conn *c = &conns[idx];
            if (c->state == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                pending--;
                if (err) {
                    connectFailed++;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    c->fd = -1;
                    c->state = CLOSED;
                    continue;
                }
                c->state = OPEN;
                connected++;
                c->lastSend = now;
                if (expiry) {
                    struct sockaddr_in me;
                    socklen_t size = sizeof me;
                    if (getsockname(c->fd, (struct sockaddr *)&me, &size) == 0)
                        c->port = ntohs(me.sin_port);
                    if (c->silent) expiringOpen++;
                }
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)idx};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                if (fleet) {
                    double every = expiry && c->silent ? keep : period;
                    c->next = now + (int64_t)(uniform() * every * 1e9);
                    heapPush(idx);
                } else {
                    sendPing(c, now);
                }
                continue;
            }
            if (c->state != OPEN) continue;
            for (;;) {
                ssize_t got = recv(c->fd, buf, sizeof buf, 0);
                if (got > 0) {
                    for (ssize_t i = 0; i < got; i++) {
                        if (c->lineStart && buf[i] == 'e') errorLines++;
                        c->lineStart = buf[i] == '\n';
                        if (buf[i] != '\n') continue;
                        allReplies += c->inflight;
                        if (measuring && c->inflight) {
                            replies++;
                            record(now - c->sentAt);
                            if (rttPath) {
                                if (nRtt + 2 > capRtt) {
                                    capRtt = capRtt ? 2 * capRtt : 65536;
                                    rttTimes = realloc(rttTimes, capRtt * sizeof(double));
                                }
                                rttTimes[nRtt++] = c->sentAt / 1e9;
                                rttTimes[nRtt++] = (now - c->sentAt) / 1e9;
                            }
                        }
                        c->inflight = 0;
                        if (!fleet) sendPing(c, now);
                    }
                    if (got < (ssize_t)sizeof buf) {
                        if (events[e].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) continue;
                        break;
                    }
                    continue;
                }
                if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (got < 0 && errno == ECONNRESET) resets++;
                closeConn(epfd, c, idx, now, fleet); /* FIN or reset */
                break;
            }
        }
    }
done:
    cpuAtEnd = cpuSeconds();
    if (expiry)
        for (int i = 0; i < nconns; i++)
            if (conns[i].state == CLOSED && conns[i].fd >= 0) close(conns[i].fd);
    if (measuring) {
        printf("end\n");
        fflush(stdout);
    }
    uint64_t total = replies;
    double p50 = percentile(0.50, total - histOver), p90 = percentile(0.90, total - histOver);
    double p99 = percentile(0.99, total - histOver), p999 = percentile(0.999, total - histOver);
    int stillOpen = 0, silentOpen = 0;
    for (int i = 0; i < nconns; i++)
        if (conns[i].state == OPEN) {
            stillOpen++;
            silentOpen += conns[i].silent;
        }
    double minClose = 0, maxClose = 0;
    for (int i = 0; i < nCloseTimes; i++) {
        if (i == 0 || closeTimes[i] < minClose) minClose = closeTimes[i];
        if (closeTimes[i] > maxClose) maxClose = closeTimes[i];
    }
    printf("{\"mode\": \"%s\", \"connections\": %d, \"connected\": %llu, "
           "\"connect_failed\": %llu, \"seconds\": %.6f, \"replies\": %llu, "
           "\"error_lines\": %llu, \"send_errors\": %llu, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, "
           "\"over_1s\": %llu, \"busy_closed\": %llu, \"silent_closed\": %llu, "
           "\"open_at_end\": %d, \"silent_open_at_end\": %d, "
           "\"close_min_s\": %.6f, \"close_max_s\": %.6f, \"cpu_s\": %.6f, \"all_replies\": %llu, \"silent\": %d, "
           "\"cpu_fins_s\": %.6f, \"resets\": %llu}\n",
           mode, nconns, (unsigned long long)connected, (unsigned long long)connectFailed,
           windowStart ? duration : 0.0, (unsigned long long)replies,
           (unsigned long long)errorLines, (unsigned long long)sendErrors, p50, p90, p99,
           p999, (unsigned long long)histOver, (unsigned long long)busyClosed,
           (unsigned long long)silentClosed, stillOpen, silentOpen, minClose, maxClose,
           measuring ? cpuAtEnd - cpuAtStart : 0.0, (unsigned long long)allReplies, nsilent,
           cpuLastFin - cpuFirstFin, (unsigned long long)resets);
    if (closeTimesPath) {
        FILE *f = fopen(closeTimesPath, "w");
        if (!f) {
            perror("loadgen: close times");
            return 1;
        }
        for (int i = 0; i < nCloseTimes; i++) fprintf(f, "silent %.6f\n", closeTimes[i]);
        for (int i = 0; i < nBusyCloseTimes; i++) fprintf(f, "busy %.6f\n", busyCloseTimes[i]);
        fclose(f);
    }
    if (finsPath) { /* "PORT LAST-BYTE FIN" per expiring connection */
        FILE *f = fopen(finsPath, "w");
        if (!f) {
            perror("loadgen: fins");
            return 1;
        }
        for (int i = 0; i < nconns; i++)
            if (conns[i].silent)
                fprintf(f, "%d %.6f %.6f\n", conns[i].port, conns[i].lastSend / 1e9,
                        conns[i].finAt / 1e9);
        fclose(f);
    }
    if (rttPath) { /* "SENT-AT ROUND-TRIP" per reply in the window */
        FILE *f = fopen(rttPath, "w");
        if (!f) {
            perror("loadgen: rtt times");
            return 1;
        }
        for (size_t i = 0; i + 1 < nRtt; i += 2)
            fprintf(f, "%.6f %.6f\n", rttTimes[i], rttTimes[i + 1]);
        fclose(f);
    }
    if (histogramPath) { /* "MICROSECONDS COUNT" for every non-empty bucket */
        FILE *f = fopen(histogramPath, "w");
        if (!f) {
            perror("loadgen: histogram");
            return 1;
        }
        for (int i = 0; i < HIST_US; i++)
            if (hist[i]) fprintf(f, "%d %u\n", i, hist[i]);
        if (histOver) fprintf(f, "%d %llu\n", HIST_US, (unsigned long long)histOver);
        fclose(f);
    }
    fflush(stdout);
    return 0;
}
