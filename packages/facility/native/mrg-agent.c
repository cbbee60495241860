/*
 * mrg-agent: the guest agent of a VM node (runs in the guest, static, from the
 * initramfs; vm-image.ts). It serves every virtio-serial port named
 * `org.merge.agent.<n>`, one process per port, one session per port at a time
 * (the host takes a free port: vm-agent-wire.mjs). Frames both ways are
 *
 *   0xA5 TYPE LEN(u32 big-endian) PAYLOAD
 *
 * host → guest: 'H' hello ("MRGHELLO" and a 16-byte session id: the session's
 * first frame; it ends whatever the port was doing, and the guest echoes it
 * back before anything else), 'O' open (tty u8, rows u16, cols u16, shell script: run by
 * /bin/sh -c, in a session of its own, on a new pty when tty is 1, else on
 * pipes), 'I' stdin bytes, 'E' end of stdin (closes the pipe; ^D on a pty),
 * 'W' window size (rows u16, cols u16), 'K' signal (u8) to the command's
 * process group, 'P' ping.
 * guest → host: 'H' the hello echoed, 'S' started (pid u32), '1' stdout, '2' stderr, 'Q' exit
 * (status i32: the exit code, or 128 + signal), 'P' pong, 'X' error text
 * (no session: the guest restarted under the host's feet; a bad open).
 *
 * The guest does not reliably see a host connection close before the next
 * one's bytes arrive on the port (the remnant of a frame cut short was seen
 * still pending when the next session's hello came), and QEMU's open/close
 * notices travel on the control queue, apart from the port's bytes, so a close
 * may also be seen late. So a hang-up ends the session only when it lasts
 * (HUP_GRACE_MS); a new session says hello, and the host drops whatever came
 * before the echo of its own hello. The remnant of a frame cut short by a
 * hang-up is skipped when a hello follows it.
 *
 * Stdin streams: what the host sends reaches the command as it comes, with
 * back-pressure (the port is not read while the command has not taken the
 * last input). When the host hangs up (its end closes), the session's process
 * group is killed. A background child may outlive its command; its later
 * output is dropped, as on a container.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0xA5
#define MAX_FRAME (1 << 20)
#define IN_MAX (256 * 1024)
#define HUP_GRACE_MS 1000
/* A hello frame's header and payload prefix: "\xA5H", length 24, "MRGHELLO". */
static const unsigned char HELLO[14] = {MAGIC, 'H', 0, 0, 0, 24, 'M', 'R', 'G', 'H', 'E', 'L', 'L', 'O'};

static int port = -1;
static const char *port_name = "";
static int sigp[2];

struct buf {
  unsigned char *p;
  size_t len, cap;
};

static void put(struct buf *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) _exit(3);
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static void drop(struct buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* Write all of it to the port; -1 when the host hung up for good (what is left is dropped). */
static int port_write(const unsigned char *d, size_t n) {
  long long hup_since = 0;
  while (n) {
    ssize_t w = write(port, d, n);
    if (w > 0) {
      d += w;
      n -= w;
      hup_since = 0;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) return -1;
    struct pollfd p = {port, POLLOUT, 0};
    if (poll(&p, 1, 1000) < 0 && errno != EINTR) return -1;
    if ((p.revents & POLLHUP) && !(p.revents & POLLOUT)) {
      /* A hang-up seen now may be the last connection's, late: wait for it to last. */
      if (!hup_since) hup_since = now_ms();
      else if (now_ms() - hup_since > HUP_GRACE_MS) return -1;
      usleep(50000);
    }
  }
  return 0;
}

static int send_frame(char type, const void *d, size_t n) {
  unsigned char h[6] = {MAGIC, (unsigned char)type, n >> 24, n >> 16, n >> 8, n};
  if (port_write(h, 6) < 0) return -1;
  return n ? port_write(d, n) : 0;
}

static void send_text(char type, const char *s) { send_frame(type, s, strlen(s)); }

struct session {
  pid_t pid; /* 0: none */
  int tty;
  int in, out, err; /* -1 when closed; a pty's master is in and out */
  int slave;        /* a pty's slave, held so the master never reads EIO before the command opens it */
  int eof;          /* end of stdin asked: close once the input is taken */
  struct buf input;
};
static struct session s = {0, 0, -1, -1, -1, -1, 0, {0}};

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void session_end(void) {
  if (s.in == s.out) s.in = -1;
  close_fd(&s.in);
  close_fd(&s.out);
  close_fd(&s.err);
  close_fd(&s.slave);
  s.pid = 0;
  s.eof = 0;
  s.input.len = 0;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void session_kill(void) {
  if (!s.pid) return;
  kill(-s.pid, SIGKILL);
  kill(s.pid, SIGKILL);
  waitpid(s.pid, NULL, 0);
  session_end();
}

static char *const child_env[] = {"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root", "TERM=xterm", "SHELL=/bin/sh",
                                  NULL};

static void session_open(const unsigned char *p, size_t n) {
  session_kill();
  if (n < 5) return send_text('X', "open: short frame");
  int tty = p[0];
  struct winsize ws = {.ws_row = (p[1] << 8) | p[2], .ws_col = (p[3] << 8) | p[4]};
  char *script = strndup((const char *)p + 5, n - 5);
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, master = -1;
  char *slave = NULL;
  if (tty) {
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || !(slave = ptsname(master))) {
      if (master >= 0) close(master);
      free(script);
      return send_text('X', "open: no pty (is /dev/pts mounted?)");
    }
    slave = strdup(slave);
    if (ws.ws_row && ws.ws_col) ioctl(master, TIOCSWINSZ, &ws);
  } else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
    free(script);
    return send_text('X', "open: no pipes");
  }
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    if (tty) {
      int sl = open(slave, O_RDWR);
      if (sl < 0) _exit(126);
      ioctl(sl, TIOCSCTTY, 0);
      dup2(sl, 0);
      dup2(sl, 1);
      dup2(sl, 2);
      if (sl > 2) close(sl);
    } else {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
    }
    if (chdir("/root") < 0 && chdir("/") < 0) _exit(126);
    execle("/bin/sh", "sh", "-c", script, (char *)NULL, child_env);
    _exit(127);
  }
  free(script);
  char slave_name[64];
  snprintf(slave_name, sizeof slave_name, "%s", slave ? slave : "");
  free(slave);
  if (pid < 0) {
    if (tty) close(master);
    for (int i = 0; i < 2; i++) {
      close(in[i]);
      close(out[i]);
      close(err[i]);
    }
    return send_text('X', "open: fork failed");
  }
  s.pid = pid;
  s.tty = tty;
  if (tty) {
    s.in = s.out = master;
    s.slave = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    nonblock(master);
  } else {
    close(in[0]);
    close(out[1]);
    close(err[1]);
    s.in = in[1];
    s.out = out[0];
    s.err = err[0];
    nonblock(s.in);
    nonblock(s.out);
    nonblock(s.err);
  }
  unsigned char pb[4] = {pid >> 24, pid >> 16, pid >> 8, pid};
  send_frame('S', pb, 4);
}

/* Forward what a command wrote; returns 0 at its end (EOF, or EIO: a pty whose every slave closed). */
static int pump_out(int *fd, char type) {
  unsigned char b[16384];
  for (;;) {
    ssize_t r = read(*fd, b, sizeof b);
    if (r > 0) {
      send_frame(type, b, r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return 1;
    if (s.in == *fd) s.in = -1;
    close_fd(fd);
    return 0;
  }
}

static void pump_in(void) {
  while (s.input.len && s.in >= 0) {
    ssize_t w = write(s.in, s.input.p, s.input.len);
    if (w > 0) {
      drop(&s.input, w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) return;
    s.input.len = 0; /* the command no longer reads (EPIPE): input is dropped */
  }
  if (s.eof && !s.input.len && !s.tty && s.in >= 0) close_fd(&s.in);
}

static void reap(void) {
  int st;
  if (!s.pid || waitpid(s.pid, &st, WNOHANG) != s.pid) return;
  if (s.out >= 0) pump_out(&s.out, '1');
  if (s.err >= 0) pump_out(&s.err, '2');
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  unsigned char b[4] = {code >> 24, code >> 16, code >> 8, code};
  /* The status goes out before the pty closes (closing it hangs its terminal up). */
  send_frame('Q', b, 4);
  session_end();
}

static void frame(char type, const unsigned char *p, size_t n) {
  switch (type) {
    case 'H':
      /* A new session: what the port was doing ends; the echo tells the host where its session starts. */
      if (n != 24 || memcmp(p, HELLO + 6, 8) != 0) break;
      session_kill();
      s.input.len = 0;
      send_frame('H', p, n);
      break;
    case 'O':
      session_open(p, n);
      break;
    case 'I':
      if (s.pid && s.in >= 0 && !s.eof) put(&s.input, p, n);
      pump_in();
      break;
    case 'E':
      if (!s.pid) break;
      if (s.tty) put(&s.input, "\x04", 1);
      else s.eof = 1;
      pump_in();
      break;
    case 'W':
      if (s.pid && s.tty && n >= 4) {
        struct winsize ws = {.ws_row = (p[0] << 8) | p[1], .ws_col = (p[2] << 8) | p[3]};
        ioctl(s.out, TIOCSWINSZ, &ws);
      }
      break;
    case 'K':
      if (s.pid && n >= 1) kill(-s.pid, p[0]);
      break;
    case 'P':
      if (s.pid) send_frame('P', NULL, 0);
      else send_text('X', "the guest agent has no such session (the guest restarted)");
      break;
  }
}

static void on_chld(int sig) {
  (void)sig;
  int e = errno;
  if (write(sigp[1], "c", 1) < 0) {
  }
  errno = e;
}

static void serve(const char *dev) {
  port_name = dev;
  port = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (port < 0) _exit(1);
  if (pipe2(sigp, O_NONBLOCK | O_CLOEXEC) < 0) _exit(1);
  signal(SIGPIPE, SIG_IGN);
  /* A session of its own, no terminal: a command's terminal hanging up is none of its business. */
  setsid();
  signal(SIGHUP, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigaction(SIGCHLD, &sa, NULL);
  struct buf rb = {0};
  int hup = 0;
  long long hup_at = 0;
  for (;;) {
    int pending = s.input.len && s.in >= 0;
    struct pollfd g[5] = {{hup || s.input.len >= IN_MAX ? -1 : port, POLLIN, 0},
                          {sigp[0], POLLIN, 0},
                          {s.out, POLLIN | (s.tty && pending ? POLLOUT : 0), 0},
                          {s.tty ? -1 : s.err, POLLIN, 0},
                          {pending && !s.tty ? s.in : -1, POLLOUT, 0}};
    if (poll(g, 5, hup ? 200 : 2000) < 0 && errno != EINTR) _exit(2);
    if (g[1].revents) {
      char c[64];
      while (read(sigp[0], c, sizeof c) > 0) {
      }
    }
    reap();
    if (s.pid && g[2].fd >= 0 && (g[2].revents & (POLLIN | POLLHUP | POLLERR)) && s.out >= 0) pump_out(&s.out, '1');
    if (s.pid && g[3].fd >= 0 && (g[3].revents & (POLLIN | POLLHUP | POLLERR)) && s.err >= 0) pump_out(&s.err, '2');
    if (s.input.len) pump_in();
    if (hup) {
      struct pollfd p = {port, POLLIN, 0};
      poll(&p, 1, 0);
      if (!(p.revents & POLLHUP) || (p.revents & POLLIN)) hup = 0;
      else if (now_ms() - hup_at >= HUP_GRACE_MS && (s.pid || rb.len)) {
        /* The host hung up for good: its session goes with it; half a frame is stale. */
        if (s.pid) fprintf(stderr, "mrg-agent: %s: the host hung up; session %d ended\n", port_name, (int)s.pid);
        session_kill();
        rb.len = 0;
      }
      continue;
    }
    if (!(g[0].revents & (POLLIN | POLLHUP))) continue;
    unsigned char b[65536];
    ssize_t r = read(port, b, sizeof b);
    if (r > 0) {
      put(&rb, b, r);
      size_t at = 0;
      while (rb.len - at >= 6) {
        if (rb.p[at] != MAGIC) {
          at++;
          continue;
        }
        uint32_t n = ((uint32_t)rb.p[at + 2] << 24) | (rb.p[at + 3] << 16) | (rb.p[at + 4] << 8) | rb.p[at + 5];
        if (n > MAX_FRAME) {
          at++;
          continue;
        }
        if (rb.len - at < 6 + n) {
          /* Cut short (its host hung up mid-frame)? A hello after it starts afresh. */
          unsigned char *h = memmem(rb.p + at + 1, rb.len - at - 1, HELLO, sizeof HELLO);
          if (!h) break;
          fprintf(stderr, "mrg-agent: %s: %zu stale bytes before a hello skipped\n", port_name, (size_t)(h - rb.p) - at);
          at = h - rb.p;
          continue;
        }
        frame(rb.p[at + 1], rb.p + at + 6, n);
        at += 6 + n;
      }
      drop(&rb, at);
    } else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
      /* The host hung up, or the notice of an earlier hang-up came late: ended if it lasts (above). */
      hup = 1;
      hup_at = now_ms();
    }
  }
}

int main(int argc, char **argv) {
  /* One port given (a tty, for trying the agent on the host): serve it alone. */
  if (argc > 1) serve(argv[1]);
  signal(SIGHUP, SIG_IGN);
  char devs[32][300];
  int n = 0;
  DIR *d = opendir("/sys/class/virtio-ports");
  struct dirent *e;
  while (d && (e = readdir(d)) && n < 32) {
    char path[300], name[128] = "";
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (!fgets(name, sizeof name, f)) name[0] = 0;
    fclose(f);
    if (strncmp(name, "org.merge.agent.", 16) == 0) snprintf(devs[n++], sizeof devs[0], "/dev/%s", e->d_name);
  }
  if (d) closedir(d);
  if (!n) {
    fprintf(stderr, "mrg-agent: no org.merge.agent.* virtio-serial port\n");
    return 1;
  }
  pid_t pids[32];
  for (int i = 0; i < n; i++)
    if ((pids[i] = fork()) == 0) serve(devs[i]);
  /* A port's server that dies is started again (its port is its only state). */
  for (;;) {
    int st = 0;
    pid_t p = wait(&st);
    if (p > 0)
      fprintf(stderr, "mrg-agent: port server %d ended (%s %d)\n", p, WIFSIGNALED(st) ? "signal" : "status",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    if (p < 0) {
      if (errno == EINTR) continue;
      sleep(1);
      continue;
    }
    for (int i = 0; i < n; i++)
      if (pids[i] == p) {
        sleep(1);
        if ((pids[i] = fork()) == 0) serve(devs[i]);
      }
  }
}
