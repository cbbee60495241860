/*
 * The merge boot of a node container, done by its init (mrg-node) itself, in
 * no other process (a fork costs ~1.5 ms of CPU here, and every node boots at
 * once): DHCP on eth0 from the infrapod's nex, the foundry found by DNS, the
 * node's configuration fetched over HTTP (`<hostname>/config.txt`) and applied
 * through netlink, then /etc/mrg/ready (or /etc/mrg/failed with the reason).
 * It replaces a busybox script that cost ~12 processes a node (a process costs
 * milliseconds of CPU here, and every node boots at once). VMs keep the script
 * boot (image.ts), which does the same with busybox tools.
 *
 * config.txt (foundry.ts writes it), one directive a line:
 *   hostname NAME | wait IF | addr IF CIDR | up IF | forward 0|1 |
 *   route DEST|default GATEWAY IF | script
 * `script` ends the directives: the rest of the file is a shell script run by
 * the image's busybox sh (what needs a shell: accounts, keys, ...).
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>

#define MRG_SH "/usr/lib/mrg/busybox"

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Where the boot ends, back in the init's main loop (run_init): the init outlives its boot. */
static jmp_buf boot_end;
static void boot_leave(void) { longjmp(boot_end, 1); }

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) < 0 && errno == EINTR && !stopping) {}
  /* SIGTERM (power off) during the boot: stop booting, no verdict. */
  if (stopping) boot_leave();
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len) {}
  close(fd);
}

/* The boot's end: /etc/mrg/failed says why, in the words the data plane reports. */
static void boot_fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg - 1, fmt, ap);
  va_end(ap);
  fprintf(stderr, "boot: %s\n", msg);
  if (stopping) boot_leave();
  strcat(msg, "\n");
  write_file("/etc/mrg/failed", msg);
  boot_leave();
}

/* ---- netlink: what `ip addr replace` and `ip route replace` send ---- */

/* A request buffer: header, message, attributes appended by nl_attr. */
union nlreq {
  struct {
    struct nlmsghdr h;
    union {
      struct ifaddrmsg a;
      struct rtmsg r;
      struct ndmsg n;
    } u;
  } m;
  char raw[512];
};

/* A create-or-replace request of this type, its message (`msglen` bytes, zeroed) next. */
static struct nlmsghdr *nl_begin(union nlreq *buf, int type, size_t msglen) {
  memset(buf, 0, sizeof *buf);
  struct nlmsghdr *h = (struct nlmsghdr *)buf->raw;
  h->nlmsg_len = NLMSG_LENGTH(msglen);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
  return h;
}

static void nl_attr(struct nlmsghdr *h, int type, const void *data, int len) {
  struct rtattr *rta = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* One netlink socket for the boot's requests (opened on first use, closed when the boot ends): a socket a
   request was most of the sockets each node made while every node boots at once. */
static int nl_fd = -1;
static unsigned nl_seq;

/* DHCP's packet socket (dhcp_lease), kept until the boot ends: closing one waits for an RCU grace period
   (packet_release), expedited while anyone holds the rtnl lock, as someone always does at bring-up. */
static int dhcp_rx = -1;

static void boot_sockets_close(void) {
  if (nl_fd >= 0) close(nl_fd), nl_fd = -1;
  if (ctl_fd >= 0) close(ctl_fd), ctl_fd = -1;
  if (dhcp_rx >= 0) close(dhcp_rx), dhcp_rx = -1;
}

/* Send one request, return 0 or -errno from the kernel's answer (to this request: matched by sequence). */
static int nl_talk(struct nlmsghdr *h) {
  if (nl_fd < 0 && (nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0) return -errno;
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = ++nl_seq;
  int e = 0;
  if (sendto(nl_fd, h, h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) e = -errno;
  char buf[8192];
  while (e == 0) {
    ssize_t n = recv(nl_fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      e = n < 0 ? -errno : -EIO;
      break;
    }
    int len = (int)n;
    for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, len); r = NLMSG_NEXT(r, len))
      if (r->nlmsg_type == NLMSG_ERROR && r->nlmsg_seq == h->nlmsg_seq) return ((struct nlmsgerr *)NLMSG_DATA(r))->error;
  }
  /* A socket in an unknown state (a half-read answer): the next request gets a fresh one. */
  close(nl_fd);
  nl_fd = -1;
  return e;
}

/* "10.0.0.1/24" or "fd00::1/64" (no length: a host) */
static int parse_cidr(const char *s, int *fam, unsigned char *addr, int *plen) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s", s);
  char *slash = strchr(buf, '/');
  if (slash) *slash = 0;
  *fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(*fam, buf, addr) != 1) return -1;
  int max = *fam == AF_INET ? 32 : 128;
  *plen = slash ? atoi(slash + 1) : max;
  return *plen < 0 || *plen > max ? -1 : 0;
}

/* if_nametoindex's ioctl, on the init's socket (if_nametoindex opens one a call). */
static int if_index(const char *name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  int s = ctl_sock();
  if (s < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0 || ifr.ifr_ifindex <= 0) return -ENODEV;
  return ifr.ifr_ifindex;
}

static int addr_replace(const char *ifname, const char *cidr) {
  union nlreq buf;
  struct nlmsghdr *h = nl_begin(&buf, RTM_NEWADDR, sizeof buf.m.u.a);
  unsigned char a[16];
  int fam, plen, idx = if_index(ifname);
  if (idx < 0) return idx;
  if (parse_cidr(cidr, &fam, a, &plen) < 0) return -EINVAL;
  buf.m.u.a.ifa_family = fam;
  buf.m.u.a.ifa_prefixlen = plen;
  buf.m.u.a.ifa_index = idx;
  int alen = fam == AF_INET ? 4 : 16;
  nl_attr(h, IFA_LOCAL, a, alen);
  nl_attr(h, IFA_ADDRESS, a, alen);
  return nl_talk(h);
}

static int route_replace(const char *dest, const char *gw, const char *ifname) {
  union nlreq buf;
  struct nlmsghdr *h = nl_begin(&buf, RTM_NEWROUTE, sizeof buf.m.u.r);
  unsigned char d[16], g[16];
  int fam = AF_INET, plen = 0, gfam, idx = if_index(ifname);
  if (idx < 0) return idx;
  if (strcmp(dest, "default") != 0 && parse_cidr(dest, &fam, d, &plen) < 0) return -EINVAL;
  if (inet_pton(gfam = strchr(gw, ':') ? AF_INET6 : AF_INET, gw, g) != 1) return -EINVAL;
  if (strcmp(dest, "default") == 0) fam = gfam;
  if (gfam != fam) return -EINVAL;
  buf.m.u.r.rtm_family = fam;
  buf.m.u.r.rtm_dst_len = plen;
  buf.m.u.r.rtm_table = RT_TABLE_MAIN;
  buf.m.u.r.rtm_protocol = RTPROT_BOOT;
  buf.m.u.r.rtm_scope = RT_SCOPE_UNIVERSE;
  buf.m.u.r.rtm_type = RTN_UNICAST;
  int alen = fam == AF_INET ? 4 : 16;
  if (plen > 0) nl_attr(h, RTA_DST, d, alen);
  nl_attr(h, RTA_GATEWAY, g, alen);
  nl_attr(h, RTA_OIF, &idx, sizeof idx);
  return nl_talk(h);
}

/* A neighbour entry, STALE: used at once without an ARP request, and checked by unicast probes if it is used
   for long without a reply (so a changed MAC is found; `ip neigh replace ... nud stale`). */
static int neigh_stale(const char *ifname, struct in_addr ip, const uint8_t *mac) {
  union nlreq buf;
  struct nlmsghdr *h = nl_begin(&buf, RTM_NEWNEIGH, sizeof buf.m.u.n);
  int idx = if_index(ifname);
  if (idx < 0) return idx;
  buf.m.u.n.ndm_family = AF_INET;
  buf.m.u.n.ndm_ifindex = idx;
  buf.m.u.n.ndm_state = NUD_STALE;
  buf.m.u.n.ndm_type = RTN_UNICAST;
  nl_attr(h, NDA_DST, &ip, 4);
  nl_attr(h, NDA_LLADDR, mac, 6);
  return nl_talk(h);
}

/* ---- DHCP: DISCOVER (rapid commit) / OFFER / REQUEST / ACK on eth0 ---- */

struct lease {
  struct in_addr ip, server, router, dns;
  int plen;
  char domain[256];
  /* Where the ACK came from (IP and MAC source): the infrapod, the node's router, DNS server and foundry. */
  struct in_addr from;
  uint8_t from_mac[6];
  int has_from;
};

struct bootp {
  uint8_t op, htype, hlen, hops;
  uint32_t xid;
  uint16_t secs, flags;
  uint32_t ciaddr, yiaddr, siaddr, giaddr;
  uint8_t chaddr[16];
  uint8_t sname[64], file[128];
  uint8_t magic[4];
  uint8_t opts[312];
};

static size_t dhcp_build(struct bootp *p, uint32_t xid, const uint8_t *mac, int type, const struct lease *l) {
  memset(p, 0, sizeof *p);
  p->op = 1;
  p->htype = 1;
  p->hlen = 6;
  p->xid = xid;
  memcpy(p->chaddr, mac, 6);
  memcpy(p->magic, "\x63\x82\x53\x63", 4);
  uint8_t *o = p->opts;
  *o++ = 53, *o++ = 1, *o++ = (uint8_t)type;
  *o++ = 61, *o++ = 7, *o++ = 1;
  memcpy(o, mac, 6), o += 6;
  if (type == 1) *o++ = 80, *o++ = 0; /* rapid commit: nex answers a DISCOVER with the ACK */
  if (type == 3) {
    *o++ = 50, *o++ = 4;
    memcpy(o, &l->ip, 4), o += 4;
    *o++ = 54, *o++ = 4;
    memcpy(o, &l->server, 4), o += 4;
  }
  *o++ = 55, *o++ = 4, *o++ = 1, *o++ = 3, *o++ = 6, *o++ = 15;
  *o++ = 255;
  return (size_t)(o - (uint8_t *)p);
}

/* The message type of a reply for us (0: not one), with what it offers in *l. */
static int dhcp_parse(const uint8_t *pkt, ssize_t n, uint32_t xid, const uint8_t *mac, struct lease *l) {
  if (n < 20) return 0;
  int ihl = (pkt[0] & 15) * 4;
  if (n < ihl + 8 + 240 || pkt[9] != 17 || pkt[ihl + 2] != 0 || pkt[ihl + 3] != 68) return 0; /* UDP to port 68 */
  const struct bootp *p = (const struct bootp *)(pkt + ihl + 8);
  if (p->op != 2 || p->xid != xid || memcmp(p->chaddr, mac, 6) != 0 || memcmp(p->magic, "\x63\x82\x53\x63", 4) != 0)
    return 0;
  memset(l, 0, sizeof *l);
  l->ip.s_addr = p->yiaddr;
  l->plen = 24;
  int type = 0;
  const uint8_t *o = p->opts, *end = pkt + n;
  while (o < end && *o != 255) {
    if (*o == 0) { o++; continue; }
    if (o + 2 > end || o + 2 + o[1] > end) break;
    int code = o[0], len = o[1];
    const uint8_t *v = o + 2;
    if (code == 53 && len >= 1) type = v[0];
    else if (code == 1 && len == 4) {
      uint32_t m;
      memcpy(&m, v, 4);
      l->plen = __builtin_popcount(m);
    } else if (code == 3 && len >= 4) memcpy(&l->router, v, 4);
    else if (code == 6 && len >= 4) memcpy(&l->dns, v, 4);
    else if (code == 54 && len == 4) memcpy(&l->server, v, 4);
    else if (code == 15 && len > 0) snprintf(l->domain, sizeof l->domain, "%.*s", len, (const char *)v);
    o += 2 + len;
  }
  return type;
}

/* Until `name` is operationally up (IFF_RUNNING): the kernel's link watch has run for it, and in the same pass for
   its peer, the infranet bridge's port. A frame sent before is dropped by that port, still disabled, and the
   DISCOVER went again only after its retransmission wait (500 ms then: 1 node in 10 at bring-up, where the link
   watch waits on a busy rtnl lock). */
static void wait_running(const char *name, int max_ms) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  int s = ctl_sock();
  for (long long end = now_ms() + max_ms; s >= 0 && now_ms() < end; sleep_ms(2))
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags & IFF_RUNNING)) return;
}

/* DHCP messages sent for the last lease and how long it took (the boot log says). */
static int dhcp_sent;
static long long dhcp_ms;

/* Replies come to our MAC (no broadcast flag), before eth0 has an address: read them from a packet socket. */
static int dhcp_lease(struct lease *l, int deadline_ms) {
  int ifindex = if_index("eth0");
  if (ifindex < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "eth0");
  int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  /* Made with no protocol, given one by bind: a packet socket made with one is hooked on every interface at
     once, and bind then unhooks it, waiting for an RCU grace period (expedited under bring-up's rtnl load). */
  if (dhcp_rx < 0) dhcp_rx = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int rx = dhcp_rx;
  if (tx < 0 || rx < 0 || ioctl(tx, SIOCGIFHWADDR, &ifr) < 0) {
    if (tx >= 0) close(tx);
    return -1;
  }
  uint8_t mac[6];
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  /* No socket filter: compiling one costs more here (the JIT patches kernel text) than the few other
     nodes' DHCP broadcasts it would spare us during the milliseconds this socket lives (dhcp_parse skips them). */
  struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = ifindex};
  int one = 1;
  setsockopt(tx, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  setsockopt(tx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(tx, SOL_SOCKET, SO_BINDTODEVICE, "eth0", 5);
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(68)};
  if (bind(rx, (struct sockaddr *)&ll, sizeof ll) < 0 || bind(tx, (struct sockaddr *)&me, sizeof me) < 0) {
    fprintf(stderr, "boot: dhcp sockets: %s\n", strerror(errno));
    close(tx);
    return -1;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(67), .sin_addr.s_addr = INADDR_BROADCAST};
  uint32_t xid;
  int urnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (urnd < 0 || read(urnd, &xid, 4) != 4) xid = (uint32_t)getpid() ^ (uint32_t)now_ms();
  if (urnd >= 0) close(urnd);
  long long begin = now_ms(), end = begin + deadline_ms;
  wait_running("eth0", 2000);
  /* The first answer's wait is short: at bring-up 1 DISCOVER in 6 was still lost after IFF_RUNNING (the port
     enabled a link-watch pass later; no receive-buffer or interface drops), and dnsmasq answers within ~50 ms. */
  int got = -1, type = 1, wait = 50, t = 0;
  dhcp_sent = 0;
  struct lease offer;
  memset(&offer, 0, sizeof offer);
  while (got < 0 && now_ms() < end && !stopping) {
    struct bootp p;
    size_t len = dhcp_build(&p, xid, mac, type, &offer);
    if (sendto(tx, &p, len, 0, (struct sockaddr *)&to, sizeof to) < 0) {
      sleep_ms(100);
      continue;
    }
    dhcp_sent++;
    long long until = now_ms() + wait;
    while (got < 0 && (t = (int)(until - now_ms())) > 0) {
      struct pollfd pf = {rx, POLLIN, 0};
      if (poll(&pf, 1, t) <= 0) continue;
      uint8_t buf[1600];
      struct sockaddr_ll src;
      socklen_t srclen = sizeof src;
      ssize_t n = recvfrom(rx, buf, sizeof buf, 0, (struct sockaddr *)&src, &srclen);
      struct lease r;
      int mt = dhcp_parse(buf, n, xid, mac, &r);
      if (mt && src.sll_halen == 6) {
        memcpy(&r.from, buf + 12, 4);
        memcpy(r.from_mac, src.sll_addr, 6);
        r.has_from = 1;
      }
      if (mt == 2 && type == 1) { /* OFFER: request it */
        offer = r;
        type = 3;
        break;
      }
      if (mt == 5) { /* ACK (to the REQUEST, or at once with rapid commit) */
        *l = r;
        got = 0;
      }
      if (mt == 6) type = 1; /* NAK: start over */
    }
    if (got < 0 && t <= 0) {
      if (type == 3) type = 1; /* no ACK: start over */
      if (wait < 2000) wait *= 2;
    }
  }
  close(tx); /* rx: at the boot's end (boot_sockets_close) */
  dhcp_ms = now_ms() - begin;
  return got;
}

/* ---- DNS: the foundry's address, as nodes find it in MergeTB ---- */
static int dns_a(struct in_addr server, const char *name, struct in_addr *out) {
  uint8_t q[300], r[1500];
  size_t n = 12;
  memset(q, 0, 12);
  uint16_t id = (uint16_t)(now_ms() ^ getpid());
  memcpy(q, &id, 2);
  q[2] = 1, q[5] = 1; /* RD, one question */
  for (const char *s = name; *s;) {
    const char *dot = strchr(s, '.');
    size_t l = dot ? (size_t)(dot - s) : strlen(s);
    if (l == 0 || l > 63 || n + l + 6 > sizeof q) return -1;
    q[n++] = (uint8_t)l;
    memcpy(q + n, s, l), n += l;
    s += l + (dot ? 1 : 0);
  }
  q[n++] = 0;
  q[n++] = 0, q[n++] = 1, q[n++] = 0, q[n++] = 1; /* A, IN */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr = server};
  if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) < 0) return -1;
  int rc = -1;
  for (int attempt = 0; attempt < 3 && rc < 0; attempt++) {
    if (send(s, q, n, 0) < 0) break;
    struct pollfd pf = {s, POLLIN, 0};
    if (poll(&pf, 1, 1000) <= 0) continue;
    ssize_t m = recv(s, r, sizeof r, 0);
    if (m < 12 || memcmp(r, &id, 2) != 0 || (r[3] & 15) != 0) continue;
    int an = r[6] << 8 | r[7];
    size_t p = n; /* the question is echoed back as sent */
    for (int i = 0; i < an && p < (size_t)m; i++) {
      while (p < (size_t)m && r[p] != 0 && (r[p] & 0xc0) != 0xc0) p += r[p] + 1;
      p += p < (size_t)m && r[p] != 0 ? 2 : 1;
      if (p + 10 > (size_t)m) break;
      int type = r[p] << 8 | r[p + 1], len = r[p + 8] << 8 | r[p + 9];
      p += 10;
      if (type == 1 && len == 4 && p + 4 <= (size_t)m) {
        memcpy(out, r + p, 4);
        rc = 0;
        break;
      }
      p += len;
    }
    if (rc < 0) break; /* answered, but no address */
  }
  close(s);
  return rc;
}

/* ---- HTTP: GET http://server/path into a malloc'd buffer (the body) ---- */
/* `accounts` (if given): what the foundry's X-Merge-Accounts header says (1 it has accounts.sh, 0 not, -1 no header). */
static char *http_get(struct in_addr server, const char *path, char *err, size_t errlen, int *accounts) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return snprintf(err, errlen, "socket: %s", strerror(errno)), NULL;
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr = server};
  char req[512];
  int rl = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: foundry\r\n\r\n", path);
  if (connect(s, (struct sockaddr *)&to, sizeof to) < 0 || write(s, req, rl) != rl) {
    snprintf(err, errlen, "%s", strerror(errno));
    close(s);
    return NULL;
  }
  size_t cap = 8192, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 1 >= cap) {
      if (cap >= (16u << 20)) break;
      buf = realloc(buf, cap *= 2);
    }
    ssize_t n = read(s, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(s);
  buf[len] = 0;
  char *body = strstr(buf, "\r\n\r\n");
  if (strncmp(buf, "HTTP/1.", 7) != 0 || strlen(buf) < 12 || strncmp(buf + 8, " 200", 4) != 0 || !body) {
    char *eol = strchr(buf, '\r');
    if (eol) *eol = 0;
    snprintf(err, errlen, "%s", len ? buf : "no answer");
    free(buf);
    return NULL;
  }
  if (accounts) {
    *body = 0;
    static const char hdr[] = "\r\nX-Merge-Accounts: ";
    char *a = strstr(buf, hdr);
    *accounts = a ? a[sizeof hdr - 1] == '1' : -1;
  }
  memmove(buf, body + 4, strlen(body + 4) + 1);
  return buf;
}

/* ---- the configuration ---- */

static int wait_iface(const char *name) {
  /* Links may be plumbed after the node boots (rex does them later, the data plane while nodes start): up
     to 60 s. By name lookup, not /sys/class/net: a device being registered shows in sysfs before its name
     resolves (then ENODEV). Woken by the namespace's link notifications rather than polled: 500 nodes
     polling every 100 ms while their links are made cost a socket and a wake-up each time. */
  if (if_index(name) > 0) return 0;
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
  if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) close(s), s = -1;
  long long end = now_ms() + 60000;
  int rc = -1;
  for (;;) {
    if (if_index(name) > 0) { rc = 0; break; }
    long long left = end - now_ms();
    if (left <= 0) break;
    if (s < 0) { sleep_ms(100); continue; }
    /* A notification (or 1 s: one missed while the socket's buffer was full), then look again. */
    struct pollfd pf = {s, POLLIN, 0};
    if (poll(&pf, 1, left < 1000 ? (int)left : 1000) > 0) {
      char buf[8192];
      while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    }
    if (stopping) { close(s); boot_leave(); }
  }
  if (s >= 0) close(s);
  return rc;
}

static void run_script(const char *path, const char *log) {
  pid_t c = fork();
  if (c == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    execl(MRG_SH, "sh", "-e", path, (char *)NULL);
    execl("/bin/sh", "sh", "-e", path, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  if (c < 0 || waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char tail[600] = "";
    int fd = open(log, O_RDONLY);
    if (fd >= 0) {
      off_t size = lseek(fd, 0, SEEK_END);
      lseek(fd, size > 500 ? size - 500 : 0, SEEK_SET);
      ssize_t n = read(fd, tail, 500);
      tail[n > 0 ? n : 0] = 0;
      close(fd);
      for (char *q = tail; *q; q++) if (*q == '\n') *q = ' ';
    }
    boot_fail("configuration failed: script exited %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, tail);
  }
}

static void apply_config(char *text) {
  int lineno = 0;
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    lineno++;
    char *w[5] = {0};
    int k = 0;
    for (char *s = strtok(line, " \t"); s && k < 5; s = strtok(NULL, " \t")) w[k++] = s;
    if (k == 0 || w[0][0] == '#') continue;
    int rc = 0;
    if (strcmp(w[0], "hostname") == 0 && k == 2) rc = sethostname(w[1], strlen(w[1])) < 0 ? -errno : 0;
    else if (strcmp(w[0], "wait") == 0 && k == 2) {
      if (wait_iface(w[1]) < 0) boot_fail("configuration failed: interface %s never appeared", w[1]);
    } else if (strcmp(w[0], "addr") == 0 && k == 3) rc = addr_replace(w[1], w[2]);
    else if (strcmp(w[0], "up") == 0 && k == 2) {
      if (if_index(w[1]) < 0) rc = -ENODEV;
      else link_up(w[1]);
    } else if (strcmp(w[0], "forward") == 0 && k == 2) write_file("/proc/sys/net/ipv4/ip_forward", w[1][0] == '1' ? "1\n" : "0\n");
    else if (strcmp(w[0], "route") == 0 && k == 4) rc = route_replace(w[1], w[2], w[3]);
    else if (strcmp(w[0], "script") == 0 && k == 1) {
      if (next && *next) {
        write_file("/etc/mrg/config-script.sh", next);
        run_script("/etc/mrg/config-script.sh", "/var/log/mrg-config.log");
      }
      return;
    } else boot_fail("configuration failed: config.txt line %d: unknown directive \"%s\" with %d fields", lineno, w[0], k);
    if (rc < 0) boot_fail("configuration failed: %s %s%s%s: %s", w[0], w[1] ? w[1] : "", w[2] ? " " : "", w[2] ? w[2] : "", strerror(-rc));
  }
}

/* The whole boot, in the container's init; ends in ready or failed (or leaves early when the node is stopped). */
static void native_boot(void) {
  struct lease l;
  /* A testbed node in the harbor keeps asking, as a machine PXE-booting does: its infrapod may be on another
     host that is not up yet (its agent registers later, or the machine is loaded). An experiment node fails
     after a minute, saying so. */
  int standby = access("/etc/mrg/standby", F_OK) == 0;
  while (dhcp_lease(&l, 60000) < 0) {
    if (!standby || stopping) boot_fail("no DHCP lease on the infranet");
    fprintf(stderr, "boot: no DHCP lease yet; in standby, asking again\n");
  }
  char cidr[64], ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &l.ip, ip, sizeof ip);
  snprintf(cidr, sizeof cidr, "%s/%d", ip, l.plen);
  int rc = addr_replace("eth0", cidr);
  if (rc < 0) boot_fail("infranet address %s: %s", cidr, strerror(-rc));
  /* The infranet's router (the infrapod): the node's default route until its configuration sets others. */
  if (l.router.s_addr) {
    char r[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &l.router, r, sizeof r);
    if ((rc = route_replace("default", r, "eth0")) < 0) fprintf(stderr, "boot: default route via %s: %s\n", r, strerror(-rc));
  }
  char resolv[512] = "", dns[INET_ADDRSTRLEN] = "";
  if (l.dns.s_addr) inet_ntop(AF_INET, &l.dns, dns, sizeof dns);
  snprintf(resolv, sizeof resolv, "%s%s%s%s%s%s", l.domain[0] ? "search " : "", l.domain, l.domain[0] ? "\n" : "",
           dns[0] ? "nameserver " : "", dns, dns[0] ? "\n" : "");
  write_file("/etc/resolv.conf", resolv);
  /* The infrapod answered the DHCP, so its MAC is known: the DNS query and HTTP fetches below need no ARP
     broadcast (each one walked every port of the infranet bridge: n² at bring-up). */
  if (l.has_from && (rc = neigh_stale("eth0", l.from, l.from_mac)) < 0) fprintf(stderr, "boot: neighbour %s: %s\n", inet_ntoa(l.from), strerror(-rc));
  fprintf(stderr, "boot: lease %s router %s dns %s (%d sent, %lld ms)\n", cidr, inet_ntoa(l.router), dns, dhcp_sent, dhcp_ms);
  struct in_addr foundry = l.dns;
  if (!l.dns.s_addr || dns_a(l.dns, "foundry", &foundry) < 0) foundry = l.dns.s_addr ? l.dns : l.router;
  char host[65] = "", path[128], err[256] = "";
  gethostname(host, sizeof host - 1);
  snprintf(path, sizeof path, "/%s/config.txt", host);
  char *config = NULL;
  int has_accounts = -1;
  for (int n = 0; (n < 20 || (standby && !stopping)) && !(config = http_get(foundry, path, err, sizeof err, &has_accounts));
       n++)
    sleep_ms(n < 20 ? 500 : 2000);
  if (!config) boot_fail("foundry unreachable at %s (%s)", inet_ntoa(foundry), err);
  write_file("/etc/mrg/config.txt", config);
  apply_config(config);
  free(config);
  /* The project's members (accounts, keys, sshd): only materializations with accounts have the file. The foundry
     says with config.txt whether it has one (a connection a node fewer); a foundry that does not say is asked. */
  char *accounts = has_accounts != 0 ? http_get(foundry, "/accounts.sh", err, sizeof err, NULL) : NULL;
  if (accounts) {
    write_file("/etc/mrg/accounts.sh", accounts);
    free(accounts);
    run_script("/etc/mrg/accounts.sh", "/var/log/mrg-accounts.log");
  }
  write_file("/etc/mrg/ready", "");
  setpriority(PRIO_PROCESS, 0, 0); /* rc.local runs as the node does, not at the boot's priority (mrg-node.c) */
  if (access("/etc/mrg/rc.local", X_OK) == 0 && fork() == 0) {
    setsid();
    execl("/etc/mrg/rc.local", "rc.local", (char *)NULL);
    _exit(127);
  }
}
