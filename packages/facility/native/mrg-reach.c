/*
 * mrg-reach: which of these addresses do not answer ICMP echo from inside a
 * network namespace (the infrapod: is every node on the infranet?). One
 * process and one raw socket for all of them, where a busybox ping per node
 * cost two processes each (milliseconds of CPU apiece on a loaded host).
 *
 *   mrg-reach NETNS_PATH TIMEOUT_MS ADDR...
 *
 * Echo requests go to every silent address in rounds (0, 0.3, 1, 2, 3.5, 5.5 s,
 * ...: the first packet to a node also resolves its MAC, and a node may still
 * be bringing its interface up); prints each address that never answered, one
 * a line, and exits 0 (2 on a usage or system error, with the reason on stderr).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint16_t checksum(const void *p, size_t len) {
  const uint16_t *w = p;
  uint32_t sum = 0;
  for (; len > 1; len -= 2) sum += *w++;
  if (len) sum += *(const uint8_t *)w;
  sum = (sum >> 16) + (sum & 0xffff);
  sum += sum >> 16;
  return (uint16_t)~sum;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mrg-reach NETNS_PATH TIMEOUT_MS ADDR...\n");
    return 2;
  }
  int nsfd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
    fprintf(stderr, "mrg-reach: cannot enter %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  long timeout = atol(argv[2]);
  int n = argc - 3;
  struct sockaddr_in *to = calloc((size_t)n + 1, sizeof *to);
  char *answered = calloc((size_t)n + 1, 1);
  for (int i = 0; i < n; i++) {
    to[i].sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[i + 3], &to[i].sin_addr) != 1) {
      fprintf(stderr, "mrg-reach: \"%s\" is not an IPv4 address\n", argv[i + 3]);
      return 2;
    }
  }
  int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (s < 0) {
    fprintf(stderr, "mrg-reach: raw socket: %s\n", strerror(errno));
    return 2;
  }
  int big = 1 << 20;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  uint16_t id = (uint16_t)getpid();
  static const long rounds[] = {0, 300, 1000, 2000, 3500, 5500, 8000, 11000};
  long start = now_ms(), deadline = start + timeout;
  int left = n, round = 0;
  while (left > 0 && now_ms() < deadline) {
    if (round < (int)(sizeof rounds / sizeof rounds[0]) && now_ms() - start >= rounds[round]) {
      for (int i = 0; i < n; i++) {
        if (answered[i]) continue;
        struct icmphdr h = {0};
        h.type = ICMP_ECHO;
        h.un.echo.id = htons(id);
        h.un.echo.sequence = htons((uint16_t)i);
        h.checksum = checksum(&h, sizeof h);
        sendto(s, &h, sizeof h, 0, (struct sockaddr *)&to[i], sizeof to[i]);
      }
      round++;
    }
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    if (poll(&pfd, 1, 20) <= 0) continue;
    unsigned char buf[1500];
    ssize_t r;
    while ((r = recv(s, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      struct iphdr *ip = (struct iphdr *)buf;
      size_t hl = (size_t)ip->ihl * 4;
      if ((size_t)r < hl + sizeof(struct icmphdr)) continue;
      struct icmphdr *h = (struct icmphdr *)(buf + hl);
      if (h->type != ICMP_ECHOREPLY || ntohs(h->un.echo.id) != id) continue;
      int i = ntohs(h->un.echo.sequence);
      if (i < n && !answered[i] && ip->saddr == to[i].sin_addr.s_addr) {
        answered[i] = 1;
        left--;
      }
    }
  }
  for (int i = 0; i < n; i++)
    if (!answered[i]) printf("%s\n", argv[i + 3]);
  return 0;
}
