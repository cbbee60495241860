/*
 * mrg-emu: a link emulator for kernels without netem. It forwards Ethernet
 * frames between the emulator-side ports of one emulated link (two for a
 * point-to-point link, more for a LAN, with MAC learning), delaying each frame
 * by the latency of the port it leaves through and dropping it with that port's
 * loss probability. Capacity is left to the kernel (tbf on the port).
 *
 *   mrg-emu -n NETNS_PATH -c CONTROL_SOCKET IFNAME:DELAY_NS:LOSS ...
 *   mrg-emu -s < lines   (start many forwarders, detached: see start_detached)
 *
 * Control (UNIX stream socket, one line per connection):
 *   set INDEX DELAY_NS LOSS   -> "ok"
 *   get                       -> "INDEX DELAY_NS LOSS FORWARDED DROPPED" per port
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAXPORTS 64
#define MAXQ 20000
#define HDR ((int)sizeof(struct virtio_net_hdr))
#define BUFSZ (65536 + 64)

struct pkt {
  struct pkt *next;
  uint64_t due;
  int len;
  unsigned char data[];
};

struct port {
  char name[IFNAMSIZ];
  int ifindex, fd;
  volatile uint64_t delay_ns;
  volatile double loss;
  struct pkt *head, *tail;
  int qlen;
  uint64_t fwd, drop;
};

static struct port ports[MAXPORTS];
static int nports;
static uint64_t rng = 88172645463325252ULL;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static double uniform(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / (double)(1ULL << 53);
}

/* MAC learning table for LANs: small open hash. */
#define MACS 4096
static struct { unsigned char mac[6]; int port; int used; } macs[MACS];
static unsigned mac_hash(const unsigned char *m) {
  unsigned h = 2166136261u;
  for (int i = 0; i < 6; i++) h = (h ^ m[i]) * 16777619u;
  return h % MACS;
}
static void learn(const unsigned char *m, int port) {
  if (m[0] & 1) return;
  unsigned h = mac_hash(m);
  for (int i = 0; i < MACS; i++, h = (h + 1) % MACS) {
    if (!macs[h].used || memcmp(macs[h].mac, m, 6) == 0) {
      memcpy(macs[h].mac, m, 6);
      macs[h].port = port;
      macs[h].used = 1;
      return;
    }
  }
}
static int lookup(const unsigned char *m) {
  if (m[0] & 1) return -1;
  unsigned h = mac_hash(m);
  for (int i = 0; i < MACS; i++, h = (h + 1) % MACS) {
    if (!macs[h].used) return -1;
    if (memcmp(macs[h].mac, m, 6) == 0) return macs[h].port;
  }
  return -1;
}

static void enqueue(int j, const unsigned char *buf, int len, uint64_t t) {
  struct port *p = &ports[j];
  if (uniform() < p->loss || p->qlen >= MAXQ) {
    p->drop++;
    return;
  }
  struct pkt *k = malloc(sizeof *k + (size_t)len);
  if (!k) { p->drop++; return; }
  k->next = NULL;
  k->due = t + p->delay_ns;
  k->len = len;
  memcpy(k->data, buf, (size_t)len);
  /* Constant delay per port keeps the queue sorted, except right after the delay
     was lowered; then a frame waits for the ones before it (no reordering). */
  if (p->tail) p->tail->next = k; else p->head = k;
  p->tail = k;
  p->qlen++;
}

static int open_port(struct port *p) {
  for (int tries = 0; tries < 200; tries++) {
    p->ifindex = (int)if_nametoindex(p->name);
    if (p->ifindex > 0) break;
    usleep(50000);
  }
  if (p->ifindex <= 0) { fprintf(stderr, "mrg-emu: no interface %s\n", p->name); return -1; }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) { perror("socket"); return -1; }
  int one = 1;
  /* Frames carry their offload metadata (GSO, partial checksums) through us intact. */
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) { perror("PACKET_VNET_HDR"); return -1; }
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  int rcv = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = p->ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); return -1; }
  struct packet_mreq mr = {0};
  mr.mr_ifindex = p->ifindex;
  mr.mr_type = PACKET_MR_PROMISC;
  setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
  p->fd = fd;
  return 0;
}

/*
 * A port's socket reports an error: its interface went down (the error is read and cleared, forwarding
 * goes on when it is up again) or was deleted (the link is gone: nothing left to forward, exit). Left
 * unread, the error makes every ppoll return at once: a real-time process spinning on a core.
 */
static void port_error(struct port *p) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if ((int)if_nametoindex(p->name) != p->ifindex) {
    fprintf(stderr, "mrg-emu: port %s is gone (%s): exiting\n", p->name, strerror(err ? err : ENODEV));
    exit(0);
  }
}

static void control(int lfd) {
  int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  struct timeval tv = {1, 0};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char line[256];
  ssize_t n = read(c, line, sizeof line - 1);
  if (n <= 0) { close(c); return; }
  line[n] = 0;
  int idx;
  unsigned long long d;
  double l;
  if (sscanf(line, "set %d %llu %lf", &idx, &d, &l) == 3) {
    if (idx < 0 || idx >= nports || l < 0 || l > 1) dprintf(c, "error: bad port or loss\n");
    else { ports[idx].delay_ns = d; ports[idx].loss = l; dprintf(c, "ok\n"); }
  } else if (strncmp(line, "get", 3) == 0) {
    for (int i = 0; i < nports; i++)
      dprintf(c, "%d %llu %.6f %llu %llu\n", i, (unsigned long long)ports[i].delay_ns, ports[i].loss,
              (unsigned long long)ports[i].fwd, (unsigned long long)ports[i].drop);
  } else dprintf(c, "error: expected 'set INDEX DELAY_NS LOSS' or 'get'\n");
  close(c);
}

/*
 * `-s`: one forwarder per stdin line, `LOG_FILE ARG...` (ARG: this program's usual arguments), each
 * forked from this small process and exec'ing this program anew, in its own session, stdin from
 * /dev/null, output appended to LOG_FILE; prints its pid (or `err why`) per line, in order, and
 * exits at the end of its input. A materialization starts its emulators at once (49 at 500 nodes):
 * spawned from node.js, each was a fork of a 200 MB process (milliseconds of page-table copying,
 * the event loop blocked meanwhile). The forwarders are the same processes as when started one by
 * one (exec'd with the same arguments); whether each answers is the caller's look at its socket.
 */
static int start_detached(const char *self) {
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, stdin) > 0) {
    char *f[MAXPORTS + 8];
    int k = 0;
    for (char *t = strtok(line, " \t\n"); t && k < MAXPORTS + 7; t = strtok(NULL, " \t\n")) f[k++] = t;
    if (k == 0) continue;
    if (k < 2) { printf("err expected LOG_FILE ARG...\n"); fflush(stdout); continue; }
    f[k] = NULL;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
      setsid();
      int nul = open("/dev/null", O_RDWR), log = open(f[0], O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (nul >= 0) dup2(nul, 0);
      if (log < 0) log = nul;
      dup2(log, 1);
      dup2(log, 2);
      /* Nothing of the launcher's stdin/stdout stays open in a forwarder: the caller reads to its end. */
      for (int fd = 3; fd < 1024; fd++) close(fd);
      f[0] = (char *)self;
      execv("/proc/self/exe", f);
      perror("mrg-emu: exec");
      _exit(127);
    }
    if (c < 0) printf("err fork: %s\n", strerror(errno));
    else printf("%d\n", (int)c);
    fflush(stdout);
  }
  free(line);
  return 0;
}

int main(int argc, char **argv) {
  const char *netns = NULL, *ctl = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "n:c:s")) != -1) {
    if (opt == 'n') netns = optarg;
    else if (opt == 's') return start_detached(argv[0]);
    else if (opt == 'c') ctl = optarg;
    else return 2;
  }
  if (!ctl || optind >= argc || argc - optind > MAXPORTS) {
    fprintf(stderr, "usage: mrg-emu -n NETNS -c CONTROL IFNAME:DELAY_NS:LOSS ...\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  /* Real-time priority: a busy host must not add its scheduling delay to the
     emulated latency. Best effort; without it the emulation still runs. */
  struct sched_param sp = {.sched_priority = 20};
  if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0) perror("mrg-emu: SCHED_FIFO (continuing at normal priority)");
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  rng ^= (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
  if (netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) { perror("setns"); return 1; }
    close(fd);
  }
  for (int i = optind; i < argc; i++) {
    struct port *p = &ports[nports];
    unsigned long long d = 0;
    double l = 0;
    char name[IFNAMSIZ];
    if (sscanf(argv[i], "%15[^:]:%llu:%lf", name, &d, &l) != 3) { fprintf(stderr, "bad port %s\n", argv[i]); return 2; }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->delay_ns = d;
    p->loss = l;
    if (open_port(p) < 0) return 1;
    nports++;
  }
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = {0};
  sun.sun_family = AF_UNIX;
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s", ctl);
  unlink(ctl);
  if (bind(lfd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(lfd, 8) < 0) { perror("control"); return 1; }
  fprintf(stderr, "mrg-emu: %d ports up\n", nports);

  static unsigned char buf[BUFSZ];
  struct pollfd pfd[MAXPORTS + 1];
  for (;;) {
    uint64_t t = now_ns(), next = UINT64_MAX;
    for (int j = 0; j < nports; j++) {
      struct port *p = &ports[j];
      while (p->head && p->head->due <= t) {
        struct pkt *k = p->head;
        if (send(p->fd, k->data, (size_t)k->len, 0) < 0) p->drop++;
        else p->fwd++;
        p->head = k->next;
        if (!p->head) p->tail = NULL;
        p->qlen--;
        free(k);
      }
      if (p->head && p->head->due < next) next = p->head->due;
    }
    for (int j = 0; j < nports; j++) pfd[j] = (struct pollfd){ports[j].fd, POLLIN, 0};
    pfd[nports] = (struct pollfd){lfd, POLLIN, 0};
    struct timespec to, *top = NULL;
    if (next != UINT64_MAX) {
      uint64_t w = next > t ? next - t : 0;
      to.tv_sec = (time_t)(w / 1000000000ULL);
      to.tv_nsec = (long)(w % 1000000000ULL);
      top = &to;
    }
    int r = ppoll(pfd, (nfds_t)nports + 1, top, NULL);
    if (r < 0 && errno != EINTR) { perror("ppoll"); return 1; }
    if (r <= 0) continue;
    if (pfd[nports].revents & POLLIN) control(lfd);
    t = now_ns();
    for (int i = 0; i < nports; i++) {
      if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) port_error(&ports[i]);
      if (!(pfd[i].revents & POLLIN)) continue;
      for (int burst = 0; burst < 64; burst++) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(ports[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0) break;
        if (from.sll_pkttype == PACKET_OUTGOING || n < HDR + 14) continue;
        const unsigned char *eth = buf + HDR;
        if (nports == 2) {
          enqueue(1 - i, buf, (int)n, t);
          continue;
        }
        learn(eth + 6, i);
        int out = lookup(eth);
        if (out >= 0 && out != i) enqueue(out, buf, (int)n, t);
        else if (out < 0)
          for (int j = 0; j < nports; j++) if (j != i) enqueue(j, buf, (int)n, t);
      }
    }
  }
}
