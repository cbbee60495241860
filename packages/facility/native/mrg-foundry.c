/*
 * mrg-foundry: the infrapod's foundry, a static HTTP/1.0 file server in one
 * process. Every node fetches its configuration (and the accounts file) at
 * boot; busybox httpd forked a process per request, and a fork costs
 * milliseconds of CPU on this kind of host (page tables), two a node. Here a
 * request is a few syscalls in a poll loop.
 *
 *   mrg-foundry ADDR PORT DIR
 *
 * Serves GET/HEAD of regular files under DIR (no "..", no directory
 * listings; 404 otherwise), one request per connection. Daemonizes once it
 * listens (the launcher's exit status says whether it could bind; it prints
 * the daemon's pid).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MAXCONN = 512, REQMAX = 2048, TIMEOUT_MS = 10000 };

struct conn {
  int fd;
  size_t len;
  long long deadline;
  char req[REQMAX];
};

static int rootfd;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Write all of it (the socket is blocking now, with a send timeout). */
static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w, n -= (size_t)w;
  }
}

static void reply_status(int fd, const char *status) {
  char h[128];
  int n = snprintf(h, sizeof h, "HTTP/1.0 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
  send_all(fd, h, (size_t)n);
}

/* A path is served when every segment is a plain name (no "..", no empty or hidden tricks beyond that). */
static int safe_path(const char *p) {
  if (*p != '/') return 0;
  for (const char *s = p; *s; s++) {
    if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == 0)) return 0;
    if ((unsigned char)*s < 0x20) return 0;
  }
  return 1;
}

static void respond(struct conn *c) {
  int fd = c->fd;
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  c->req[c->len] = 0;
  char method[8], path[1024];
  if (sscanf(c->req, "%7s %1023s", method, path) != 2) return reply_status(fd, "400 Bad Request");
  int head = strcmp(method, "HEAD") == 0;
  if (!head && strcmp(method, "GET") != 0) return reply_status(fd, "405 Method Not Allowed");
  char *q = strchr(path, '?');
  if (q) *q = 0;
  if (!safe_path(path) || path[1] == 0) return reply_status(fd, "404 Not Found");
  int f = openat(rootfd, path + 1, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (f < 0 || fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
    if (f >= 0) close(f);
    return reply_status(fd, "404 Not Found");
  }
  /* With a node's configuration, whether the project's accounts file is here: the boot (mrg-boot.h) then asks
     for it only when it is (a connection a node fewer at bring-up). */
  size_t pl = strlen(path);
  const char *acct = "";
  if (pl >= 11 && strcmp(path + pl - 11, "/config.txt") == 0)
    acct = faccessat(rootfd, "accounts.sh", F_OK, 0) == 0 ? "X-Merge-Accounts: 1\r\n" : "X-Merge-Accounts: 0\r\n";
  char h[200];
  int n = snprintf(h, sizeof h,
                   "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %lld\r\n%sConnection: close\r\n\r\n",
                   (long long)st.st_size, acct);
  send_all(fd, h, (size_t)n);
  char buf[16384];
  ssize_t r;
  while (!head && (r = read(f, buf, sizeof buf)) > 0) send_all(fd, buf, (size_t)r);
  close(f);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: mrg-foundry ADDR PORT DIR\n");
    return 2;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    fprintf(stderr, "mrg-foundry: bad address %s\n", argv[1]);
    return 2;
  }
  rootfd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    fprintf(stderr, "mrg-foundry: %s: %s\n", argv[3], strerror(errno));
    return 1;
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0) {
    fprintf(stderr, "mrg-foundry: listen on %s:%s: %s\n", argv[1], argv[2], strerror(errno));
    return 1;
  }
  pid_t p = fork();
  if (p < 0) return 1;
  if (p > 0) {
    printf("%d\n", (int)p);
    return 0;
  }
  setsid();
  int nul = open("/dev/null", O_RDWR);
  if (nul >= 0) dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
  signal(SIGPIPE, SIG_IGN);

  static struct conn conns[MAXCONN];
  static struct pollfd pfd[MAXCONN + 1];
  size_t n = 0;
  for (;;) {
    pfd[0] = (struct pollfd){ls, n < MAXCONN ? POLLIN : 0, 0};
    long long now = now_ms(), next = now + TIMEOUT_MS;
    for (size_t i = 0; i < n; i++) {
      pfd[i + 1] = (struct pollfd){conns[i].fd, POLLIN, 0};
      if (conns[i].deadline < next) next = conns[i].deadline;
    }
    int r = poll(pfd, n + 1, (int)(next > now ? next - now : 0));
    if (r < 0 && errno != EINTR) return 1;
    now = now_ms();
    /* Requests first (their slots are reused below), then new connections. */
    for (size_t i = n; i-- > 0;) {
      struct conn *c = &conns[i];
      int done = 0;
      if (pfd[i + 1].revents) {
        ssize_t got = read(c->fd, c->req + c->len, REQMAX - 1 - c->len);
        if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR))) done = 1;
        else if (got > 0) {
          c->len += (size_t)got;
          c->req[c->len] = 0;
          /* The request line is all we need; the end of the headers (or a full buffer) means it is complete. */
          if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n") || c->len >= REQMAX - 1) {
            respond(c);
            done = 1;
          }
        }
      } else if (c->deadline <= now) done = 1;
      if (done) {
        close(c->fd);
        conns[i] = conns[--n];
      }
    }
    if (pfd[0].revents & POLLIN) {
      while (n < MAXCONN) {
        int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        conns[n].fd = fd;
        conns[n].len = 0;
        conns[n].deadline = now + TIMEOUT_MS;
        n++;
      }
    }
  }
}
